"""Cross-check: cl-nlp's naive/ewc/replay against Avalanche's Naive/EWC/Replay, same stream and seed.

    python -m cl_nlp.avalanche.crosscheck                 # embedded MiniLM, 2 x 10 CLINC intents
    python -m cl_nlp.avalanche.crosscheck --model DIR --seeds 0 1 --set train.epochs=1

Each pair shares the stream, the seed, the model initialisation, the optimiser (a fresh AdamW per
task, warm-up/decay, clipping) and cl-nlp's evaluation; what differs is each library's strategy
mechanics (Fisher convention, replay batching) and batch order. Prints a markdown table (the one
in docs/avalanche.md). Needs the avalanche extra.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cl_nlp.config import load_config
from cl_nlp.evaluation.results import Results
from cl_nlp.experiment import run_experiment
from cl_nlp.strategies.ewc.fisher import fisher_diagonal
from cl_nlp.tracking import Tracker

STREAM = ["stream.n_tasks=2", "stream.classes_per_task=10", "stream.train_per_class=12", "stream.test_per_class=10",
          "train.epochs=2", "eval.probes=false"]
PAIRS = [  # (label, strategy, its --set options)
    ("cl-nlp naive", "naive", []),
    ("Avalanche Naive", "avalanche:Naive", []),
    ("cl-nlp ewc (λ=1000)", "ewc", ["strategy.lambda=1000"]),
    ("Avalanche EWC (λ=1000)", "avalanche:EWC", ["strategy.ewc_lambda=1000"]),
    ("Avalanche EWC (λ=8000 = 1000·B/2)", "avalanche:EWC", ["strategy.ewc_lambda=8000"]),
    ("cl-nlp replay (200, +8 per batch)", "replay", ["strategy.size=200"]),
    ("Avalanche Replay (200, +16 per batch)", "avalanche:Replay", ["strategy.mem_size=200"]),
]


def row(label: str, results: Results, seconds: float) -> str:
    live, aware = results.summary("live"), results.summary("task_aware")
    diag = float(np.mean(np.diag(results.matrix("live"))))
    return (f"| {label} | {diag:.3f} | {live['acc']:.3f} | {live['bwt']:+.3f} | {aware['acc']:.3f} | "
            f"{aware['bwt']:+.3f} | {seconds:.0f} |")


def fisher_mass(run_dir: str) -> str:
    """Both Fisher estimates at the same weights: a finished run's last checkpoint, on its last task.

    cl-nlp averages per-example squared gradients; Avalanche averages squared mini-batch-mean
    gradients, which shrinks it by about the batch size where per-example gradients disagree.
    """
    import torch
    from avalanche.training.plugins import EWCPlugin
    from safetensors.torch import load_model
    from torch import nn

    from cl_nlp.avalanche.benchmark import avalanche_dataset
    from cl_nlp.avalanche.model import TextClassifierModule
    from cl_nlp.checkpoint import latest_checkpoint
    from cl_nlp.config import build_config, read_yaml
    from cl_nlp.experiment import tokenize_stream
    from cl_nlp.models import build_model, load_tokenizer
    from cl_nlp.streams import build_stream

    cfg = build_config(read_yaml(Path(run_dir) / "config.yaml"))
    tokenizer = load_tokenizer(cfg.model.name_or_path)
    stream = build_stream(cfg.stream.name, cfg.stream.options)
    task = tokenize_stream(stream, tokenizer, cfg.model.max_length)[-1]
    model = build_model(cfg.model.name_or_path, stream.num_classes, cfg.model.pooling)
    load_model(model, str(latest_checkpoint(run_dir).path / "model.safetensors"))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    ours = fisher_diagonal(model, task.train, names, pad_id=tokenizer.pad_token_id)
    module = TextClassifierModule(model)
    width = max(len(x) for x in task.train.input_ids)
    theirs = EWCPlugin(1.0).compute_importances(
        module, nn.CrossEntropyLoss(), torch.optim.SGD(module.parameters(), lr=0.0),
        avalanche_dataset(task.train, tokenizer.pad_token_id, width, 0), "cpu", cfg.train.batch_size)
    a = sum(float(f.sum()) for f in ours.values())
    b = sum(float(theirs["classifier." + n].data.sum()) for n in names)
    return (f"Fisher mass at the end of {run_dir} on its last task ({len(task.train)} examples, batch "
            f"{cfg.train.batch_size}): cl-nlp (per-example) {a:.4g}, Avalanche (per-batch) {b:.4g}, ratio {a / b:.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra key=value overrides")
    parser.add_argument("--output", default="runs/crosscheck")
    parser.add_argument("--only", nargs="+", default=None, help="run only the rows whose strategy is named here")
    parser.add_argument("--fisher", metavar="RUN_DIR", help="only compare the two Fisher estimates at RUN_DIR's final weights")
    args = parser.parse_args(argv)
    if args.fisher:
        print(fisher_mass(args.fisher))
        return
    print("| run | mean R_jj (just learned) | live ACC | live BWT | task-aware ACC | task-aware BWT | train s |")
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        for label, strategy, options in PAIRS:
            if args.only and strategy not in args.only:
                continue
            cfg = load_config(None, [*STREAM, *options, *args.overrides], strategy=strategy, model=args.model, seed=seed)
            cfg.output = str(Path(args.output) / f"seed{seed}")
            cfg.run_name = f"{strategy.replace(':', '-')}-{len(options) and options[0].split('=')[1]}"
            outcome = run_experiment(cfg, tracker=Tracker(), echo=lambda line: None, show_progress=False)
            train = sum(v for k, v in outcome.results.timings.items() if k.startswith("train_seconds/"))
            print(row(f"{label}, seed {seed}", outcome.results, train), flush=True)


if __name__ == "__main__":
    main()
