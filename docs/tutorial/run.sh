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
    # chapter 1: [n, 30, 10] sigmoid, quadratic cost, eta = 3.0
    run "$data-ch1-quadratic" "${common[@]}" "${source[@]}" --sizes "$inputs,30,10" --cost quadratic --lr 3.0
    # chapter 3: the cross-entropy cost, eta = 0.5
    run "$data-ch3-cross-entropy" "${common[@]}" "${source[@]}" --sizes "$inputs,30,10" --cost cross_entropy --lr 0.5
    # chapter 3: + L2 regularisation (weight decay lambda/n), 100 hidden neurons; Nielsen's
    # lambda = 5 on MNIST, 0.5 on the 1438 digits, where 5 is too strong
    decay=$([ "$data" = digits ] && python -c "print(0.5 / 1438)" || python -c "print(5.0 / 8000)")
    run "$data-ch3-l2-100" "${common[@]}" "${source[@]}" --sizes "$inputs,100,10" --cost cross_entropy --lr 0.5 --weight-decay "$decay"
    # chapter 3: a softmax output layer with the log-likelihood cost
    run "$data-ch3-softmax" "${common[@]}" "${source[@]}" --sizes "$inputs,100,10" --activations sigmoid,softmax --lr 0.5 --weight-decay "$decay"
    # chapter 3: the old N(0, 1) weights against N(0, 1/n_in)
    run "$data-ch3-init-normal" "${common[@]}" "${source[@]}" --sizes "$inputs,30,10" --cost cross_entropy --lr 0.5 --weight-decay "$decay" --init normal
done

# chapter 5: vanishing gradients, per-layer gradient norms of a deep sigmoid net and of relu
deep=(train --json --no-progress --data "$mnist" --sizes 784,30,30,30,30,10 --cost cross_entropy --lr 0.1 --epochs 10 --batch-size 10 --diagnostics)
run deep-sigmoid "${deep[@]}" --activations sigmoid --history "$out/deep-sigmoid.json"
run deep-relu "${deep[@]}" --activations relu,relu,relu,relu,sigmoid --history "$out/deep-relu.json"
run vanishing plot "$out/deep-sigmoid.json" "$out/deep-relu.json" -o "$out/vanishing.png"

# the graph, the notes' chain, and backprop against the numeric gradient
run graph graph --sizes 784,30,30,10 --activations sigmoid,sigmoid,softmax -o "$out/graph.png"
run explain-quadratic explain
run explain-cross-entropy explain --cost cross_entropy
run timing gradcheck --timing --widths 8,16,32,64,128 --samples 10 --repeats 3
