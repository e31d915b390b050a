#!/usr/bin/env bash
# Every output of docs/tutorial.md, remade: run from the repository root as
#   bash docs/tutorial/run.sh
# Each NAME.txt starts with the command that made it; its last line is the command's JSON.
set -euo pipefail
out=docs/tutorial
mnist=../shared/data/mnist
gpunet() { PYTHONPATH=. python -m gpunet "$@"; }

run() {  # run NAME ARGS...: gpunet ARGS, its output into NAME.txt after the command
    local name=$1
    shift
    {
        echo "\$ gpunet $*"
        gpunet "$@" 2>&1
    } >"$out/$name.txt"
    tail -n 1 "$out/$name.txt"
}

common=(train --json --no-progress --epochs 30 --batch-size 10)
for data in digits mnist; do
    if [ "$data" = digits ]; then source=(--data digits) inputs=64; else source=(--data "$mnist") inputs=784; fi
    # Nielsen's lambda = 5 (weight decay lambda/n) on MNIST; 0.5 on the 1438 digits, where 5 is too strong
    decay=$([ "$data" = digits ] && python -c "print(0.5 / 1438)" || python -c "print(5.0 / 8000)")
    # chapter 1, network.py: [n, 30, 10] sigmoid, quadratic cost, eta = 3.0, N(0, 1) weights and biases
    run "$data-ch1-quadratic" "${common[@]}" "${source[@]}" --sizes "$inputs,30,10" --cost quadratic --lr 3.0 --init normal
    # chapter 3, network2.py with large_weight_initializer (N(0, 1)): the cross-entropy, eta = 0.5
    run "$data-ch3-cross-entropy" "${common[@]}" "${source[@]}" --sizes "$inputs,30,10" --cost cross_entropy --lr 0.5 --init normal
    # ... + L2 regularisation, 30 and then 100 hidden neurons
    run "$data-ch3-l2-30" "${common[@]}" "${source[@]}" --sizes "$inputs,30,10" --cost cross_entropy --lr 0.5 --weight-decay "$decay" --init normal
    run "$data-ch3-l2-100" "${common[@]}" "${source[@]}" --sizes "$inputs,100,10" --cost cross_entropy --lr 0.5 --weight-decay "$decay" --init normal
    # not a run of the book: the L2 run of 100 hidden neurons with a softmax output and the log-likelihood
    run "$data-ch3-softmax" "${common[@]}" "${source[@]}" --sizes "$inputs,100,10" --activations sigmoid,softmax --lr 0.5 --weight-decay "$decay" --init normal
    # chapter 3's weight initialisation: N(0, 1) against N(0, 1/n_in) weights, the same eta = 0.1 and L2
    run "$data-ch3-init-normal" "${common[@]}" "${source[@]}" --sizes "$inputs,30,10" --cost cross_entropy --lr 0.1 --weight-decay "$decay" --init normal
    run "$data-ch3-init-lecun" "${common[@]}" "${source[@]}" --sizes "$inputs,30,10" --cost cross_entropy --lr 0.1 --weight-decay "$decay" --init lecun
done

# chapter 5: vanishing gradients, per-layer gradient norms of a deep sigmoid net and of relu
deep=(train --json --no-progress --data "$mnist" --sizes 784,30,30,30,30,10 --cost cross_entropy --lr 0.1 --epochs 10 --batch-size 10 --diagnostics)
run deep-sigmoid "${deep[@]}" --activations sigmoid --history "$out/deep-sigmoid.json"
run deep-relu "${deep[@]}" --activations relu,relu,relu,relu,sigmoid --history "$out/deep-relu.json"
run vanishing plot "$out/deep-sigmoid.json" "$out/deep-relu.json" -o "$out/vanishing.png"

# the layer graph; the notes' chain by hand and node by node; the explicit Jacobians
run graph graph --sizes 784,30,30,10 --activations sigmoid,sigmoid,softmax -o "$out/graph.png"
run explain-quadratic explain --graph "$out/chain-quadratic.png"
run explain-cross-entropy explain --cost cross_entropy --graph "$out/chain-cross-entropy.png"
run jacobians jacobians

# backprop against the numeric gradient: in seconds on this machine, then in forward passes
run timing gradcheck --timing --widths 8,16,32,64,128 --samples 10 --repeats 3
run passes passes --repeats 9 --json "$out/passes.json"
