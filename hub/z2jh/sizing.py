#!/usr/bin/env python3
"""From the measured memory per student to a cluster for a class (hub/README.md, "Past one machine").

    python hub/z2jh/sizing.py                      # 200 students, hub/z2jh/measured.json
    python hub/z2jh/sizing.py --students 120 --measured build/bench-hub.json

``measured.json`` holds the figures of one `make bench-hub` run (hub/bench.py --json).  The
rules, all stated here so they can be argued with:

* **guarantee** (Kubernetes memory request) = the median student's peak (server + kernel,
  RSS), rounded up to 64 MiB: what a student running the notebooks really holds;
* **limit** = twice the largest student's peak, rounded up to 256 MiB: room for a second open
  notebook (a second kernel) before the kernel is OOM-killed rather than the node;
* **students per node** = the node's allocatable memory over the guarantee, and no more than
  the CPU guarantee allows;
* **user nodes** = students / students per node, rounded up, plus the user placeholders
  (10 % headroom so that the next arrivals do not wait for a node), plus one core node for the
  hub, proxy and user scheduler.
"""

import argparse
import json
import math
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
MEASURED = HERE / "measured.json"

#: a common 4 vCPU / 16 GiB cloud machine; allocatable is what the kubelet leaves to pods
#: (system and kube reservations, the image puller and the network daemons: about 2.5 GiB)
NODE = {"name": "4 vCPU / 16 GiB", "cpu": 4.0, "memory_mib": 16 * 1024, "allocatable_mib": 16 * 1024 - 2560}
CPU_GUARANTEE = 0.05          # a student mostly reads; cells run in bursts (see the latency figures)
CPU_LIMIT = 1.0
HEADROOM = 0.10


def up(x, step):
    return int(math.ceil(x / step) * step)


def size(measured, students=200, node=NODE):
    mem = measured["memory_per_student_mib"]
    guarantee = up(mem["rss_median"], 64)
    limit = up(2 * mem["rss_max"], 256)
    per_node = min(node["allocatable_mib"] // guarantee, int(node["cpu"] / CPU_GUARANTEE))
    placeholders = int(math.ceil(students * HEADROOM))
    user_nodes = int(math.ceil((students + placeholders) / per_node))
    return {
        "students": students, "node": node["name"],
        "measured_rss_median_mib": round(mem["rss_median"]), "measured_rss_max_mib": round(mem["rss_max"]),
        "guarantee": f"{guarantee}M", "limit": f"{limit}M",
        "cpu_guarantee": CPU_GUARANTEE, "cpu_limit": CPU_LIMIT,
        "students_per_node": per_node, "placeholders": placeholders,
        "user_nodes": user_nodes, "core_nodes": 1,
        "memory_requested_gib": round(students * guarantee / 1024, 1),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--measured", default=str(MEASURED))
    args = ap.parse_args(argv)
    s = size(json.loads(pathlib.Path(args.measured).read_text()), args.students)
    for k, v in s.items():
        print(f"{k:26s} {v}")


if __name__ == "__main__":
    main()
