"""``raftkv sim`` (``raftkv.sim.cli.main``): exit codes and output format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from raftkv.raft.raft import Raft
from raftkv.sim.cli import main

SUMMARY = re.compile(
    r"^seed=(\d+) leaders=\d+ committed=\d+ msgs=\d+ faults=\d+ checks=\d+ ok$", re.M
)


def test_single_seed_prints_rates_and_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "3", "--ticks", "600", "--faults", "loss,crash"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("raftkv sim: nodes=5 ticks=600") and "loss 5%" in out[0]
    assert "crash+restart" in out[0]
    assert SUMMARY.match(out[1]) and out[1].startswith("seed=3 ")
    assert len(out) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus"],
        ["--nodes", "0"],
        ["--faults", "meteor"],
        ["--seeds", "5-1"],
        ["--seeds", "1-3", "--trace", "x.jsonl"],
        ["--ticks", "ten"],
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("raftkv sim: error: ") and err.count("\n") == 1


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--faults" in capsys.readouterr().out


def test_seed_sweep_with_jobs_prints_in_seed_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "1-3", "--jobs", "2", "--ticks", "500", "--faults", "all"]) == 0
    out = capsys.readouterr().out
    assert [int(s) for s in SUMMARY.findall(out)] == [1, 2, 3]
    total = out.splitlines()[-1]
    assert total.startswith("total seeds=3 ok=3 safety=0 liveness=0 error=0 ")
    for kind in ("loss", "dup", "delay", "reorder", "partition", "pause", "skew", "crash"):
        assert re.search(rf" {kind}=\d+", total), kind


def test_jobs_do_not_change_results(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--seeds", "4-5", "--ticks", "400", "--faults", "all"]
    main([*argv, "--jobs", "1"])
    one = capsys.readouterr().out
    main([*argv, "--jobs", "2"])
    assert capsys.readouterr().out == one


def test_liveness_failure_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Raft, "hup", lambda self, transfer: None)  # nobody ever campaigns
    assert main(["--seed", "2", "--ticks", "400"]) == 3
    out = capsys.readouterr().out
    assert "FAIL liveness" in out and "seed=2" in out and "replay: raftkv sim --seed 2" in out


def test_open_is_accepted_and_points_to_the_raftkv_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--ticks", "100", "--open"]) == 0
    assert "raftkv sim ... --open" in capsys.readouterr().err


def test_raftkv_sim_open_replays_the_trace_in_the_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import raftkv.cli.dashboard
    from raftkv.cli import main as raftkv_main

    opened: list[list[str]] = []
    monkeypatch.setattr(raftkv.cli.dashboard, "main", lambda argv: opened.append(argv) or 0)
    trace = tmp_path / "t.jsonl"
    assert raftkv_main(["sim", "--ticks", "100", "--trace", str(trace), "--open"]) == 0
    assert opened == [["--replay", str(trace)]] and trace.stat().st_size > 0
    assert raftkv_main(["sim", "--ticks", "100", "--open"]) == 2  # nothing to replay
