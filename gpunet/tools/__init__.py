"""Tools over the library: the command line, the throughput benchmark, the diagrams and
the worked example of `gpunet explain`. Nothing below `gpunet.tools` imports them."""
