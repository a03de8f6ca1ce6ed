#!/bin/sh
# bench/mpi-cluster.sh [BUILD] - a two-node cluster simulated on this
# machine: two ranks in two network namespaces joined by a veth pair,
# its bandwidth shaped by tc's tbf qdisc to 1 Gb/s and 10 Gb/s, and the
# Base model's step time measured at each, next to the cost model of
# docs/distributed.md.  Needs root, iproute2 and Open MPI.
#
# mpirun starts in the first namespace and reaches the second through a
# stand-in for ssh that runs the command there with `ip netns exec`.  Only
# local addresses (10.77.0.0/24) are used; every run is bounded by a
# timeout, and the namespaces are deleted on exit, whatever happens.
set -eu
b=${1:-build}
bench=$(realpath "$b/bench/fmnn_mpi_bench")
[ -x "$bench" ] || { echo "mpi-cluster: $bench is missing: run make mpi" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "mpi-cluster: needs root (network namespaces)" >&2; exit 1; }
command -v tc >/dev/null 2>&1 || { echo "mpi-cluster: tc is missing (apt-get install iproute2)" >&2; exit 1; }

tag=fmnn$$
a=${tag}a z=${tag}b
tmp=$(mktemp -d)
cleanup() {
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$z" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$a"
ip netns add "$z"
ip link add "${tag}x" type veth peer name "${tag}y"
ip link set "${tag}x" netns "$a"
ip link set "${tag}y" netns "$z"
ip -n "$a" addr add 10.77.0.1/24 dev "${tag}x"
ip -n "$z" addr add 10.77.0.2/24 dev "${tag}y"
for ns in "$a" "$z"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set "${tag}x" up
ip -n "$z" link set "${tag}y" up

# The stand-in for ssh: "agent HOST COMMAND..."
cat > "$tmp/agent" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in
10.77.0.1) ns=$a ;;
10.77.0.2) ns=$z ;;
*) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec \$ns sh -c "\$*"
AGENT
chmod +x "$tmp/agent"

steps=${STEPS:-20}
run() {
    ip netns exec "$a" timeout 300 mpirun --allow-run-as-root --host 10.77.0.1,10.77.0.2 -np 2 \
        --mca plm_rsh_agent "$tmp/agent" --mca oob_tcp_if_include 10.77.0.0/24 \
        --mca btl self,tcp --mca btl_tcp_if_include 10.77.0.0/24 --bind-to none \
        -x OMP_NUM_THREADS=1 "$bench" --threads 1 --steps "$steps" 2>&1 |
        sed -n 's/.*step_ms \([0-9.]*\).*/\1/p'
}
# A bucket of 0.2 ms of traffic: a larger one refills while the ranks
# compute and lets much of each sum through unshaped.
shape() {
    burst=$(awk -v bw="$2" 'BEGIN { printf "%d", bw / 8 * 2e-4 }')
    ip netns exec "$a" tc qdisc replace dev "${tag}x" root tbf rate "$1" burst "$burst" latency 100ms
    ip netns exec "$z" tc qdisc replace dev "${tag}y" root tbf rate "$1" burst "$burst" latency 100ms
}

# One rank's compute at batch 64 on one thread, measured here first: the
# cost model's compute(B).
alone=$(OMP_NUM_THREADS=1 timeout 300 mpirun --allow-run-as-root -np 1 --bind-to none "$bench" \
        --threads 1 --steps "$steps" 2>&1 | sed -n 's/.*step_ms \([0-9.]*\).*/\1/p')
echo "one rank, one thread: step $alone ms (compute of a batch of 64)"
printf '%-10s %12s %12s\n' link measured predicted
for link in "unshaped" "10gbit:10e9" "1gbit:1e9"; do
    name=${link%%:*}
    bits=${link#*:}
    [ "$name" = unshaped ] || shape "$name" "$bits"
    measured=$(run)
    # compute / 2 + an allreduce of 1.56 MB: 2 (N - 1) / N of it crosses the link
    if [ "$name" = unshaped ]; then
        predicted=$(awk -v c="$alone" 'BEGIN { printf "%.1f", c / 2 }')
    else
        predicted=$(awk -v c="$alone" -v bw="$bits" 'BEGIN { printf "%.1f", c / 2 + 1e3 * 1.56e6 * 8 / bw }')
    fi
    printf '%-10s %9s ms %9s ms\n' "$name" "$measured" "$predicted"
done
