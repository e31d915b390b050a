"""Per-stage timing of gpunet's training step (NumPy backend), replicating training.fit's loop."""
import sys, time, gc
import numpy as np
sys.path.insert(0, "/work/main/bench")
import epoch_vs_torch as b

X, y = b.make_data()
pc = time.perf_counter

def run(B, epochs=3):
    net = b.make_gpunet()
    ops = net.backend
    cost = net.cost_function("log_likelihood")
    Xa, targets, labels = net.checked_inputs(X, y, cost)
    from gpunet.core.optimizers import make_optimizer
    opt = make_optimizer("sgd", 0.1)
    n = Xa.shape[0]
    rng = np.random.default_rng(0)
    acc = {}
    def add(k, t):
        acc[k] = acc.get(k, 0.0) + t
    g = net.activations
    L = len(net.weights)
    for ep in range(epochs):
        if ep == 1:
            acc.clear()
            t_epoch = pc()
        order = rng.permutation(n)
        for start in range(0, n, B):
            t0 = pc()
            batch = order[start:start + B]
            ws = net.workspace(batch.shape[0])
            t1 = pc(); add("0 workspace lookup/slice", t1 - t0)
            np.take(Xa, batch, axis=0, out=ws.x)
            t2 = pc(); add("1 take X (mode=raise, out=)", t2 - t1)
            np.take(targets, batch, axis=0, out=ws.y)
            t3 = pc(); add("1 take Y", t3 - t2)
            # feedforward
            x, yb = ws.x, ws.y
            act = x.T
            for i, (w, bb, gi, z, a) in enumerate(zip(net.weights, net.biases, g, ws.weighted_input, ws.activation)):
                s = pc()
                ops.matmul(w, act, out=z)
                s1 = pc(); add(f"2 fwd GEMM W{i+1}·A{i}", s1 - s)
                z += bb[:, None]
                s2 = pc(); add(f"3 fwd bias add L{i+1}", s2 - s1)
                act = gi.forward(ops, z, a)
                add(f"3 fwd {gi.name} L{i+1}", pc() - s2)
            s = pc()
            delta = ops.output_delta(g[-1], cost, ws.weighted_input[-1], ws.activation[-1], yb.T, out=ws.delta[-1])
            add("4 BP1 output delta", pc() - s)
            for i in reversed(range(L)):
                previous = x.T if i == 0 else ws.activation[i - 1]
                s = pc()
                ops.bias_gradient(delta, out=net.grads_b[i])
                s1 = pc(); add(f"5 BP3 bias grad L{i+1}", s1 - s)
                ops.matmul(delta, previous.T, out=net.grads_w[i])
                s2 = pc(); add(f"6 BP4 GEMM dW{i+1}", s2 - s1)
                if i:
                    back = ops.matmul(net.weights[i].T, delta, out=ws.delta[i - 1])
                    s3 = pc(); add(f"6 BP2 GEMM W{i+1}^T·delta", s3 - s2)
                    delta = ops.activation_delta(g[i - 1], back, ws.weighted_input[i - 1], previous, out=back)
                    add(f"7 BP2 relu' L{i}", pc() - s3)
            s = pc()
            c = net.batch_cost(ws, yb, cost)
            s1 = pc(); add("8 batch cost (log_output)", s1 - s)
            correct = (net.classify(ws.activation[-1]) == labels[batch]).sum()
            s2 = pc(); add("8 accuracy (argmax, labels[batch])", s2 - s1)
            opt.step(ops, net.params, net.grads, net.n_weights)
            add("9 SGD step (grads*=lr; params-=grads)", pc() - s2)
            add("~ step total", pc() - t0)
    total = pc() - t_epoch
    per = epochs - 1
    print(f"\n=== B={B}: {total/per:.3f} s/epoch (instrumented, {-(-n//B)} steps)")
    tot = acc["~ step total"]
    for k in sorted(acc):
        print(f"  {k:45s} {acc[k]/per*1e3:8.1f} ms/epoch  {acc[k]/tot*100:5.1f}%")
    gemm = sum(v for k, v in acc.items() if "GEMM" in k)
    print(f"  {'[all GEMMs]':45s} {gemm/per*1e3:8.1f} ms/epoch  {gemm/tot*100:5.1f}%")

for B in [int(s) for s in sys.argv[1:]] or [64, 1024]:
    run(B)
