"""The arithmetic and the parsing behind the soak's and the faults' verdicts (bench/)."""

from __future__ import annotations

from pathlib import Path

from bench.faults import refused_calls
from bench.loadlab import Callers, Leftovers, pct, read_log
from bench.soak import slope_per_min

SIPP_ERROR = """The following events occurred:
2026-12-02\t10:03:34.940946\t1796205814.940946: Aborting call on unexpected message for Call-Id \
'50-25787@127.0.0.1': while expecting '180' (index 3), received 'SIP/2.0 503 Service Unavailable
Via: SIP/2.0/UDP 127.0.0.1:47731;rport=47731;received=127.0.0.1;branch=z9hG4bK-25787-50-1
Reason: Q.850;cause=34

'2026-12-02\t10:03:35.034266\t1796205815.034266: Aborting call on unexpected message for Call-Id \
'51-25787@127.0.0.1': while expecting '200' (index 4), received 'SIP/2.0 486 Busy Here
"""


def callers(tmp_path: Path, prefix: str = "7410") -> Callers:
    return Callers(None, prefix, 60, tmp_path / f"caller-{prefix}_logs.log",  # type: ignore[arg-type]
                   tmp_path / f"caller-{prefix}_stat.csv")


def test_refused_calls_are_named_by_caller_number_from_the_call_id(tmp_path: Path) -> None:
    (tmp_path / "caller-7410_errors.log").write_text(SIPP_ERROR)
    assert refused_calls(callers(tmp_path)) == {"741050": 503, "741051": 486}


def test_no_error_file_means_no_refused_call(tmp_path: Path) -> None:
    assert refused_calls(callers(tmp_path)) == {}


def test_sipp_log_lines_map_each_caller_to_its_first_time(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("CALLER 7501 1796205814 250000\nANSWERED 7501 1796205814 500000\n"
                   "CALLER 7501 1796205999 0\nCALLER 7502 1796205815 1\n")
    assert read_log(log, "CALLER") == {"7501": 1796205814.25, "7502": 1796205815.000001}
    assert read_log(log, "ANSWERED") == {"7501": 1796205814.5}


def test_slope_per_minute_of_a_steady_climb_and_of_a_flat_line() -> None:
    assert slope_per_min([(0, 100.0), (60, 110.0), (120, 120.0)]) == 10.0
    assert slope_per_min([(0, 5.0), (30, 5.0), (60, 5.0)]) == 0.0
    assert slope_per_min([(0, 5.0)]) is None


def test_percentiles_are_values_of_the_sample_rounded_up_never_down() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert pct(values, 50) == 50.0
    assert pct(values, 99) in (99.0, 100.0)
    assert pct([7.0], 99) == 7.0
    assert pct([], 99) is None


def test_leftovers_name_every_problem_and_none_when_all_is_well() -> None:
    clean = Leftovers(calls_sent=10, hops=10, open_hops=0, duplicated_events=0, channels=0, bridges=0,
                      end_reasons={"completed": 10})
    assert clean.problems() == []
    dirty = Leftovers(calls_sent=10, hops=9, open_hops=1, duplicated_events=2, channels=3, bridges=1,
                      end_reasons={"completed": 8, "open": 1}, contacts_intact=False)
    assert len(dirty.problems()) == 6
    assert "9 hops for 10 calls" in dirty.problems()
    assert clean.problems(expected_hops=9) == ["10 hops for 9 calls"]
