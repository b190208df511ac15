#!/usr/bin/env python3
"""From the measured memory per student to a cluster for a class (hub/README.md, "Past one machine").

    python hub/z2jh/sizing.py                      # 200 students, hub/z2jh/measured.json
    python hub/z2jh/sizing.py --students 120 --measured build/bench-hub.json

Three measurements, each the figures of one hub/bench.py run (``--json``):

* ``measured.json``: 30 students running 00-02 at once (one notebook open at a time);
* ``measured-labs.json``: 5 students running the labs 07 and 08 at once;
* ``measured-kernels.json``: students who keep every notebook open (``--keep-kernels``:
  00, 02, 07, 08, i.e. four kernels beside the server), as JupyterLab users do.

The rules, all stated here so they can be argued with:

* **guarantee** (Kubernetes memory request) = the larger median peak (server + kernel, RSS) of
  the class and lab runs, rounded up to 64 MiB: what a student with one notebook open holds;
* **limit** = the largest peak with four notebooks open plus one more kernel (that peak less
  the server, over four), rounded up to 256 MiB (without that measurement: twice the largest
  one-notebook peak): room for a fifth open notebook; beyond it, or with kernels the idle
  culler has not stopped yet, the kernel is OOM-killed ("kernel died") rather than the node;
* **students per node** = the node's allocatable memory over the guarantee, and no more than
  the CPU guarantee allows;
* **user nodes** = students / students per node, rounded up, plus the user placeholders
  (10 % headroom so that the next arrivals do not wait for a node), plus one core node for the
  hub, proxy and user scheduler.

CPU is not sized from a rule: see hub/README.md for the lab-day figures.
"""

import argparse
import json
import math
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
MEASURED = HERE / "measured.json"
LABS = HERE / "measured-labs.json"
KERNELS = HERE / "measured-kernels.json"

#: a common 4 vCPU / 16 GiB cloud machine; allocatable is what the kubelet leaves to pods
#: (system and kube reservations, the image puller and the network daemons: about 2.5 GiB)
NODE = {"name": "4 vCPU / 16 GiB", "cpu": 4.0, "memory_mib": 16 * 1024, "allocatable_mib": 16 * 1024 - 2560}
CPU_GUARANTEE = 0.05          # a student mostly reads; cells run in bursts (see the latency figures)
CPU_LIMIT = 1.0
HEADROOM = 0.10


def up(x, step):
    return int(math.ceil(x / step) * step)


def load(path):
    path = pathlib.Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def size(measured, students=200, node=NODE, labs=None, kernels=None):
    runs = [m for m in (measured, labs) if m]
    median = max(m["memory_per_student_mib"]["rss_median"] for m in runs)
    one_max = max(m["memory_per_student_mib"]["rss_max"] for m in runs)
    guarantee = up(median, 64)
    if kernels:
        many = kernels["memory_per_student_mib"]
        per_kernel = (many["rss_max"] - many["server_rss_median"]) / many["kernels_open_at_peak"]
        limit = up(many["rss_max"] + per_kernel, 256)
    else:
        limit = up(2 * one_max, 256)
    per_node = min(node["allocatable_mib"] // guarantee, int(node["cpu"] / CPU_GUARANTEE))
    placeholders = int(math.ceil(students * HEADROOM))
    user_nodes = int(math.ceil((students + placeholders) / per_node))
    return {
        "students": students, "node": node["name"],
        "measured_rss_median_mib": round(median), "measured_rss_max_mib": round(one_max),
        "measured_rss_max_kernels_open_mib": round(kernels["memory_per_student_mib"]["rss_max"]) if kernels else None,
        "kernels_open": kernels["memory_per_student_mib"].get("kernels_open_at_peak") if kernels else None,
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
    ap.add_argument("--labs", default=str(LABS))
    ap.add_argument("--kernels", default=str(KERNELS))
    args = ap.parse_args(argv)
    s = size(load(args.measured), args.students, labs=load(args.labs), kernels=load(args.kernels))
    for k, v in s.items():
        print(f"{k:26s} {v}")


if __name__ == "__main__":
    main()
