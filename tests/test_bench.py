"""``make bench`` runs end to end (a smoke test on small sizes; its figures are not asserted)."""

from mmkit import bench


def test_bench_prints_every_figure(capsys):
    """The quick bench prints model and kernel timings, the 1 GiB-style run, memory and drawing lines."""
    bench.main(["--quick"])
    out = capsys.readouterr().out
    for word in ("first_touch", "fork", "cow_fault", "reuse_fault", "fork + full COW", "bytes per mapped page",
                 "bare matplotlib floor", "stepper step", "graph redraw"):
        assert word in out, word


def test_model_memory_counts_both_processes():
    """model_memory() divides by the present PTEs of parent and child and allocates 2 pages per page."""
    per, used, folios = bench.model_memory(256)
    assert folios == 512 and used > 0 and per == used / 512
