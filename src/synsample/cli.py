"""The synsample command line. Errors a user can cause print one line and exit 2."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from synsample import __version__, checks
from synsample.errors import ConfigError, SynsampleError
from synsample.io import folder_lock


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _log(args: argparse.Namespace):
    return (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from synsample import data

    for name in args.names:
        paths = data.fetch(name, force=args.force, log=_log(args))
        print(f"{data.spec(name).name}: verified, in {paths[0].parent}")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from synsample import data
    from synsample.report.markdown import text_table

    rows, notes = [], []
    for r in data.list_cached():
        status = ("verified" if r["verified"] else "unverified" if r["verified"] is None
                  else "FAILS CHECK") if r["cached"] else (
            "generated" if r.get("generated") else "not cached")
        if r["source"] or len(r["note"]) <= 60:
            where = r["source"] or r["note"]
        else:  # a long note (a failed check and its fix) goes under the table, whole
            notes.append(f"[{len(notes) + 1}] {r['dataset']} {r['split']}: {r['note']}")
            where = f"see [{len(notes)}] below"
        rows.append([r["dataset"], r["split"], "-" if r["items"] is None else r["items"],
                     status, where])
    print(text_table(["dataset", "split", "items", "status", "source / note"], rows))
    if notes:
        print("\n" + "\n".join(notes))
    from synsample.data.cache import home

    print(f"\ncache: {home() / 'datasets'}  (set SYNSAMPLE_HOME to move it)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from synsample.train import SAMPLING_AWARE_DROPOUT, TrainConfig, train

    dropout = args.dropout
    if dropout is None and args.sampling_aware is not None:
        dropout = SAMPLING_AWARE_DROPOUT
    cfg = TrainConfig.for_arch(
        args.arch, dataset=args.dataset, epochs=args.epochs, seed=args.seed,
        batch_size=args.batch_size, lr=args.lr, dropout=dropout, init=args.init,
        optimizer=args.optimizer, noise=args.noise, estimator=args.estimator,
        noise_site=args.noise_site, data_init=False if args.no_data_init else None,
        states=args.states, sc_length=args.sc_length, lr_decay=args.lr_decay,
        calibration_items=args.calibration_items, sampling_aware=args.sampling_aware,
        sa_estimator=args.sa_estimator)
    from dataclasses import asdict

    from synsample import tracking

    with tracking.run(_tracking(args), f"train {cfg.arch} {cfg.dataset}",
                      {"train": asdict(cfg), "out": args.out},
                      {"synsample.command": "train"}) as tracker:
        result = train(cfg, args.out, data_path=args.data_path, progress=_progress(args),
                       log=_log(args), device=args.device, on_epoch=tracker.epoch)
        tracker.history(result["history"])  # the epochs of an earlier run, when resumed
        last = result["history"][-1]
        tracker.metrics({"final_test_accuracy": last["test_accuracy"],
                         "final_loss": last["loss"],
                         "train_seconds": sum(h["seconds"] for h in result["history"])})
        tracker.artifact(Path(args.out) / "config.json")
    print(f"checkpoint: {args.out} ({len(result['history'])} epochs, test accuracy "
          f"{100 * last['test_accuracy']:.2f}%)")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    args.samples = args.samples or 1000
    from synsample import checkpoint, hardware
    from synsample.evaluate import method_for

    ck = Path(args.checkpoint[0])
    ck_config = checkpoint.read_config(ck)
    args.method = method_for(ck_config, args.method)
    out = _report_folder(args, ck, "sample")
    assumptions = hardware.load_assumptions(args.cost_assumptions)
    with folder_lock(out):
        return _sample(args, ck, ck_config, out, assumptions)


def _sample(args: argparse.Namespace, ck: Path, ck_config: dict, out: Path, assumptions) -> int:
    from synsample import checkpoint, hardware, methods
    from synsample.evaluate import deterministic_outputs, sample_checkpoint
    from synsample.report.scann import write_sample_report

    pred, test, sto = sample_checkpoint(ck, args.method, args.precision, args.samples,
                                        args.seed, args.mode, args.data_path, args.limit,
                                        _progress(args), batch_size=args.batch_size,
                                        adaptive=_adaptive(args), device=args.device,
                                        method_options=_method_options(args),
                                        **_sharded(args))
    cost = hardware.measure(sto, test.images, args.samples, seed=args.seed,
                            assumptions=assumptions)
    spec = methods.get(args.method)
    model = spec.reference_model(checkpoint.load_model(ck)[0])
    det = deterministic_outputs(model, test.images).argmax(1)
    reference = spec.reference
    res = write_sample_report(out, ck, ck_config, args.precision, pred, test, det,
                              reference=reference, cost=cost)
    s = res["sampled"]
    print(f"{ck_config['dataset']} {ck_config['arch']}: {reference} "
          f"{100 * res['deterministic_accuracy']:.2f}%, {args.method} {args.precision} "
          f"first choice {100 * s['accuracy']:.2f}% over {args.samples} passes "
          f"(mean entropy {s['mean_entropy']:.3f} bits, {s['sampling_seconds']:.1f} s)")
    _print_cost(cost, args.samples)
    print(f"report: {out / 'report.md'}")
    return 0


def _print_cost(cost: dict, samples: int) -> None:
    per = cost["per_inference"]
    print(f"  cost per inference ({samples} passes): {per['energy_nj']:,.1f} nJ, "
          f"{sum(per['random_bits'].values()):,.0f} random bits, weight memory "
          f"{cost['memory_bytes'] / 1024:,.1f} KiB")


def cmd_evaluate(args: argparse.Namespace) -> int:
    args.samples = args.samples or 1000
    from synsample import checkpoint, hardware
    from synsample.evaluate import evaluate_checkpoint, method_for

    ck = Path(args.checkpoint[0])
    args.method = method_for(checkpoint.read_config(ck), args.method)
    out = _report_folder(args, ck, "evaluate")
    assumptions = hardware.load_assumptions(args.cost_assumptions)  # fails before sampling
    from synsample import tracking

    params = {k: v for k, v in vars(args).items() if k != "func"}
    with folder_lock(out), tracking.run(_tracking(args), f"evaluate {args.method} "
                                        f"{args.precision} {ck.name}", params,
                                        {"synsample.command": "evaluate"}) as tracker:
        res = evaluate_checkpoint(
            ck, out, args.method, args.precision, args.samples, args.seed, args.mode,
            args.score, args.ood_items, None, args.data_path, args.limit, _progress(args),
            adaptive=_adaptive(args), device=args.device, method_options=_method_options(args),
            cost_assumptions=assumptions, skip_ood=tuple(args.skip_ood),
            alphas=tuple(args.alpha), **_sharded(args))
        tracker.metrics({k: res[k] for k in ("summary", "calibration", "calibration_votes",
                                             "ratios", "selective", "ood", "cost") if k in res})
        tracker.artifact(out)
    s = res["summary"]
    print(f"{res['dataset']} {res['arch']}, {args.method} {args.precision}: first choice "
          f"{100 * s['accuracy']:.2f}%, ECE {res['calibration']['ece']:.4f}")
    for name, o in res["ood"].items():
        print(f"  OoD {name}: AUROC {o['by_score'][args.score]['auroc']:.4f} ({args.score}), "
              f"paper 004 rule detects {100 * o['paper_004_rule']['detection_rate']:.1f}%")
    if "skipped" in res["conformal"]:
        print(f"  temperature scaling and conformal sets: not done ({res['conformal']['skipped']})")
    else:
        recal = res["recalibration"]["mean_probabilities"]
        print(f"  temperature {recal['temperature']:.3f}: ECE {recal['before']['ece']:.4f} -> "
              f"{recal['after']['ece']:.4f}")
        for alpha, e in res["conformal"]["mean_probabilities"]["by_score"]["aps"].items():
            print(f"  APS sets at alpha {alpha}: coverage {100 * e['test']['coverage']:.2f}%, "
                  f"mean size {e['test']['mean_size']:.2f}")
    _print_cost(res["cost"], args.samples)
    print(f"report: {out / 'report.md'}")
    return 0


def _report_folder(args: argparse.Namespace, ck: Path, command: str) -> Path:
    """``--out``, or ``runs/COMMAND-CHECKPOINT-METHOD-PRECISION-TIME``, checked writable."""
    out = Path(args.out or Path("runs") / f"{command}-{ck.name}-{args.method}-{args.precision}-"
               f"{time.strftime('%Y%m%d-%H%M%S')}")
    return checks.writable_folder(out, "report folder")


def cmd_export(args: argparse.Namespace) -> int:
    from synsample import export

    checks.writable_file(Path(args.out).with_suffix(".safetensors"), "export file")

    manifest = export.export(args.checkpoint, args.method, args.out, args.precision,
                             args.stream_length, args.bitstream, args.data_path)
    out = Path(args.out).with_suffix(".safetensors")
    print(f"{manifest['config']['arch']}, {args.method} {args.precision}: "
          f"{len(manifest['layers'])} sampled layers written to {out} "
          f"(manifest {out.with_suffix('.json')}); read back with synsample.export.load")
    return 0


def _method_options(args: argparse.Namespace) -> dict:
    """What the method needs beyond the coin precision (sc: stream length and source; an
    ensemble: its other members)."""
    from synsample import methods

    options: dict = {"members": args.checkpoint[1:]} if len(args.checkpoint) > 1 else {}
    given = {k: v for k, v in (("stream_length", args.stream_length),
                               ("bitstream", args.bitstream), ("sc_path", args.sc_path))
             if v is not None}
    unknown = [k for k in given if k not in methods.get(args.method).options]
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ConfigError(f"{flags} set the bitstreams of --method sc; the {args.method} method "
                          "has none: leave them out")
    return {**options, **given}


def _adaptive(args: argparse.Namespace):
    if args.adaptive is None:
        return None
    from synsample.adaptive import AdaptiveStop

    return AdaptiveStop(confidence=args.adaptive, min_samples=args.min_samples)


def _runner(args: argparse.Namespace):
    """Where the jobs (or the shards of a sampling run) go: ``--runner``, ``--address``,
    ``--workers``."""
    from synsample.cluster import RunnerConfig

    cfg = RunnerConfig(name=args.runner, address=args.address, workers=args.workers)
    cfg.check()
    if cfg.name == "ray":
        from synsample.cluster import import_ray

        import_ray()  # the missing extra is named before any work
    return cfg


def _tracking(args: argparse.Namespace):
    """MLflow tracking (``--track``, ``--tracking-uri``), or None when off."""
    if not args.track:
        if args.tracking_uri is not None:
            raise ConfigError("--tracking-uri goes with --track")
        return None
    from synsample.tracking import TrackingConfig, import_mlflow

    import_mlflow()  # the missing extra is named before any work
    return TrackingConfig(enabled=True, uri=args.tracking_uri)


def _sharded(args: argparse.Namespace) -> dict:
    """``sample`` / ``evaluate`` with ``--runner ray``: every predict sharded over the workers
    by items (:mod:`synsample.shards`)."""
    runner = _runner(args)
    return {"runner": runner} if runner.name == "ray" else {}


def cmd_reproduce(args: argparse.Namespace) -> int:
    out = checks.writable_folder(args.out or Path("runs") / _reproduce_folder(args),
                                 "report folder")
    args.out = str(out)
    checks.writable_folder(args.jobs, "job store (--jobs)")
    from synsample import tracking

    params = {k: v for k, v in vars(args).items() if k != "func"}
    with folder_lock(out), tracking.run(_tracking(args), f"reproduce {args.experiment}", params,
                                        {"synsample.command": "reproduce"}) as tracker:
        code = _reproduce(args)
        tracker.artifact(out)  # the report, its figures and metrics.json
        return code


def _reproduce_folder(args: argparse.Namespace) -> str:
    """The default report folder: runs/EXPERIMENT (runs/robustness-METHOD for a method other
    than scANN's)."""
    if args.experiment == "robustness" and args.method not in (None, "scann"):
        return f"{args.experiment}-{args.method}"
    if args.training == "sampling-aware":
        return f"{args.experiment}-sampling-aware"
    return args.experiment


def _reproduce(args: argparse.Namespace) -> int:
    from synsample.experiments import scann_entropy
    from synsample.experiments import scann_table1 as t1

    if args.experiment.startswith("nsm-"):
        return _reproduce_nsm(args)
    if args.experiment == "sc-mnist":
        return _reproduce_sc(args)
    if args.experiment == "spinbayes-mnist":
        return _reproduce_spinbayes(args)
    if args.experiment == "robustness":
        return _reproduce_robustness(args)
    if args.experiment == "costs":
        return _reproduce_costs(args)
    args.samples = args.samples or 1000

    if args.experiment == "scann-entropy":
        rows = ([(d, args.arch) for d in ("mnist", "fashion-mnist")] if args.dataset is None
                else [(args.dataset, args.arch)])
    elif args.all_rows:
        rows = [(d, a) for d in ("mnist", "fashion-mnist") for a in ("mlp", "conv")]
    else:
        rows = [(args.dataset or "mnist", args.arch)]
    out = Path(args.out)
    cfg = t1.Table1Config(rows=rows, samples=args.samples, epochs=args.epochs, seed=args.seed,
                          mode=args.mode, out=out, jobs=Path(args.jobs), data_path=args.data_path,
                          limit=args.limit, progress=_progress(args),
                          adaptive=_adaptive(args), device=args.device, runner=_runner(args),
                          tracking=_tracking(args))
    if args.experiment == "scann-holdout":
        from synsample.experiments import scann_holdout

        fractions = args.fractions
        result = scann_holdout.run(scann_holdout.HoldoutConfig(
            dataset=args.dataset or "mnist", arch=args.arch, holdout_class=args.holdout_class,
            fractions=fractions, sampling=cfg, sampling_aware=_train_coin(args),
            sa_estimator=args.sa_estimator), log=_log(args))
        title = f"\nClass {result['class_name']} under-represented, paper 000 Fig. 7"
    elif args.experiment == "scann-entropy":
        result = scann_entropy.run(cfg, log=_log(args))
        title = "\nVote entropy (bits) of correct and incorrect items, paper 000 Fig. 6"
    elif args.training == "sampling-aware":
        from synsample.experiments import sampling_aware

        result = sampling_aware.run(sampling_aware.SamplingAwareConfig(
            table=cfg, estimator=args.sa_estimator, coin=args.train_coin, out=out),
            log=_log(args))
        title = "\nTable I, paper 000: sampling-aware training beside post-hoc (accuracy %)"
    else:
        result = t1.run(cfg, log=_log(args))
        title = "\nTable I, paper 000 (accuracy %; each cell: ours (paper, difference in points))"
    return _print_result(title, result, out)


def _train_coin(args: argparse.Namespace) -> str | None:
    """The coins a reproduction trains through (None: post-hoc training)."""
    return args.train_coin if args.training == "sampling-aware" else None


def _print_result(title: str, result: dict, out: Path) -> int:
    """An experiment's table on the terminal, and where its report is."""
    print(title)
    print(result["terminal_table"])
    print(f"\nreport: {out / 'report.md'}")
    return 0


def _reproduce_sc(args: argparse.Namespace) -> int:
    from synsample.experiments import sc

    out = Path(args.out)
    lengths = sc.PAPER_LENGTHS if args.full else args.lengths or sc.DEFAULT_LENGTHS
    result = sc.run(sc.SCConfig(
        lengths=tuple(lengths), epochs=args.epochs or sc.DEFAULT_EPOCHS,
        samples=args.samples or 10, seed=args.seed, mode=args.mode, bitstream=args.bitstream,
        out=out, jobs=Path(args.jobs), data_path=args.data_path, limit=args.limit,
        progress=_progress(args), device=args.device, runner=_runner(args),
        tracking=_tracking(args)), log=_log(args))
    return _print_result("\nFigure 6, paper 003: test accuracy (%) by stream length", result, out)


def _reproduce_robustness(args: argparse.Namespace) -> int:
    from synsample.experiments import robustness

    method = args.method or "scann"
    out = Path(args.out)
    result = robustness.run(robustness.RobustnessConfig(
        method=method, datasets=(args.dataset,) if args.dataset else ("mnist", "fashion-mnist"),
        samples=args.samples or 100, seed=args.seed, mode=args.mode, epochs=args.epochs,
        out=out, jobs=Path(args.jobs), data_path=args.data_path, limit=args.limit,
        progress=_progress(args), sampling_aware=_train_coin(args),
        sa_estimator=args.sa_estimator, runner=_runner(args),
        tracking=_tracking(args)), log=_log(args))
    return _print_result("\nAccuracy (%) against each non-ideality's magnitude (columns: the "
                         "report's)", result, out)


def _reproduce_costs(args: argparse.Namespace) -> int:
    from synsample import hardware
    from synsample.experiments import costs

    out = Path(args.out)
    result = costs.run(costs.CostsConfig(
        dataset=args.dataset or "mnist", samples=args.samples or 20, seed=args.seed,
        mode=args.mode, epochs=args.epochs,
        assumptions=hardware.load_assumptions(args.cost_assumptions), out=out,
        jobs=Path(args.jobs), data_path=args.data_path, limit=args.limit,
        progress=_progress(args), runner=_runner(args),
        tracking=_tracking(args)), log=_log(args))
    return _print_result(f"\nEvery method on {result['dataset']}, {result['samples']} passes: "
                         "accuracy, OoD AUROC and cost per inference", result, out)


def _reproduce_spinbayes(args: argparse.Namespace) -> int:
    from synsample.experiments import spinbayes

    out = Path(args.out)
    sweep = {"sweep_bits": (), "sweep_crossbars": ()} if args.no_sweep else {}
    result = spinbayes.run(spinbayes.SpinBayesConfig(
        epochs=args.epochs or 10, samples=args.samples or 20, seed=args.seed, mode=args.mode,
        out=out, jobs=Path(args.jobs), data_path=args.data_path, limit=args.limit,
        progress=_progress(args), device=args.device, runner=_runner(args),
        tracking=_tracking(args), **sweep),
        log=_log(args))
    return _print_result("\nTable 1, paper 004 (MNIST, LeNet-5; %, ours beside the paper's)",
                         result, out)


def _reproduce_nsm(args: argparse.Namespace) -> int:
    from synsample.experiments import nsm

    out = Path(args.out)
    samples = args.samples or 100
    result = nsm.run(nsm.NSMConfig(
        experiment=args.experiment, epochs=args.epochs, samples=samples, seed=args.seed,
        mode=args.mode, out=out, jobs=Path(args.jobs), data_path=args.data_path,
        limit=args.limit, progress=_progress(args), device=args.device,
        runner=_runner(args),
        tracking=_tracking(args)), log=_log(args))
    return _print_result(f"\n{args.experiment}: test error (%)", result, out)


def cmd_bench(args: argparse.Namespace) -> int:
    from synsample import benchmarks
    from synsample.io import write_json
    from synsample.report.markdown import table, text_table

    result = benchmarks.run(items=args.items, samples=args.samples, conv_items=args.conv_items,
                            conv_samples=args.conv_samples, repeats=args.repeats,
                            independent_items=min(args.independent_items, args.items),
                            independent_samples=min(args.independent_samples, args.samples),
                            log=_log(args))
    header, rows = benchmarks.table(result)
    out = Path(args.out)
    write_json(out / "bench.json", result)
    from synsample.io import write_text

    write_text(out / "bench.md", "# Sampling benchmark\n\n" + table(header, rows) + "\n")
    print(text_table(header, rows))
    print(f"\ninputs: {result['inputs']}; {result['machine']['torch_threads']} torch threads; "
          f"median of {args.repeats}; results: {out / 'bench.json'}")
    print(benchmarks.machine_line(result))
    return 0


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def _fraction(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value!r}") from None
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value!r}")
    return x


def _percentages(value: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) / 100 for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected percentages like 0,50,90,99, got {value!r}"
                                         ) from None
    if not out or any(not 0 <= f <= 1 for f in out):
        raise argparse.ArgumentTypeError(f"percentages must lie in 0..100, got {value!r}")
    return out


def _lengths(value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected bit counts like 100,300,500, got {value!r}"
                                         ) from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"stream lengths must be positive, got {value!r}")
    return out


def build_parser() -> argparse.ArgumentParser:
    from synsample.data import DATASETS, OOD_SETS
    from synsample.models import ARCHS

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's parser must not reset a -q given before the subcommand
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars or log lines, only the result (default: "
                             "shown)")
    parser = argparse.ArgumentParser(
        prog="synsample", parents=[common],
        description="Sampled stochastic neural networks: train, convert, sample K passes, "
                    "measure how sure the network is, reproduce the papers.",
        epilog="Data is cached in $SYNSAMPLE_HOME (default ~/.cache/synsample); runs go to "
               "./runs. `synsample COMMAND --help` for details.")
    parser.add_argument("--version", action="version", version=f"synsample {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p_data = sub.add_parser("data", help="fetch, verify and list datasets", parents=[common],
                            description="Fetch datasets into the cache (verified by the SHA-256 "
                                        "of the decoded arrays) and list what is cached.")
    dsub = p_data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p_fetch = dsub.add_parser("fetch", help="fetch and verify datasets", parents=[common])
    p_fetch.add_argument("names", nargs="+", metavar="DATASET", choices=sorted(DATASETS),
                         help=f"one of: {', '.join(DATASETS)}")
    p_fetch.add_argument("--force", action="store_true", help="fetch again even if cached")
    p_fetch.set_defaults(func=cmd_data_fetch)
    p_list = dsub.add_parser("list", help="what is cached, verified or not", parents=[common])
    p_list.set_defaults(func=cmd_data_list)

    from synsample.tracking import DEFAULT_STORE

    tracked = argparse.ArgumentParser(add_help=False)
    tracked.add_argument("--track", action="store_true",
                         help="log the run to MLflow (pip install 'synsample[track]'): config, "
                              "per-epoch loss and accuracy, final metrics, report and figures "
                              "(default: off)")
    tracked.add_argument("--tracking-uri", metavar="URI",
                         help=f"with --track: the MLflow store, a folder or a file:, sqlite: or "
                              f"http: URI (default {DEFAULT_STORE}, see `mlflow ui "
                              f"--backend-store-uri {DEFAULT_STORE}`)")

    archs = "; ".join(f"{a.name}: {a.description}" for a in ARCHS.values())
    p_train = sub.add_parser(
        "train", parents=[common, tracked],
        help="train a network for a method (scANN, NSM, SC, Bayesian, baselines)",
        description="Train an architecture on a dataset with the recipe of its paper. scANN "
                    "networks (mlp, conv, cifar-conv): RMSprop 1e-3, dropout 0.5, dense weights "
                    "clipped to [-1, 1] after every step (paper 000 II.B). Paper 002's networks "
                    "(nsm-*, stnn-mlp, relu-mlp, sigmoid-mlp, dcnn): inputs binarised to -1/+1, "
                    "Adam 3e-4, no clipping; NSMs sample in every training pass and start with "
                    "the data-dependent init of eq. 8. Paper 003's networks (sc-*): inputs and "
                    "weights quantized to 5 or 11 states, Adam 1e-2 on the sum of squared errors "
                    "decaying 0.85 per epoch, weights clipped to [-1, 1]; --sc-length trains with "
                    "bitstreams (Method 2). Writes a checkpoint after every epoch; "
                    "the same command resumes it. Architectures: " + archs + ".")
    p_train.add_argument("--dataset", default="mnist", choices=sorted(DATASETS),
                         help="dataset to train on (default mnist)")
    p_train.add_argument("--arch", default="mlp", choices=sorted(ARCHS),
                         help="architecture, listed above (default mlp, paper 000's 784-400-10)")
    p_train.add_argument("--epochs", type=_positive, default=100,
                         help="epochs in all (default 100)")
    p_train.add_argument("--out", required=True, help="checkpoint folder")
    p_train.add_argument("--seed", type=int, default=0,
                         help="seeds the init, the shuffling and the noise (default 0)")
    p_train.add_argument("--batch-size", type=_positive, default=100,
                         help="training items per step (default 100, as the papers)")
    p_train.add_argument("--lr", type=float,
                         help="learning rate (default: the architecture's, 1e-3 or 3e-4)")
    p_train.add_argument("--optimizer", choices=["rmsprop", "adam", "sgd"],
                         help="default: the architecture's (rmsprop for scANN, adam for paper "
                              "002's and 003's; sgd is eq. 7 as written)")
    p_train.add_argument("--lr-decay", type=float,
                         help="multiply the learning rate by this every epoch (default: the "
                              "architecture's, 1 or 0.85 for sc-*)")
    p_train.add_argument("--dropout", type=float,
                         help="dropout rate after hidden layers (scANN networks; default 0.5, "
                              "0 with --sampling-aware)")
    p_train.add_argument("--init", choices=["glorot", "uniform", "gaussian"],
                         help="glorot (Keras default, scANN and NSM), uniform (dense weights "
                              "U(-0.99, 0.99)) or gaussian (N(0, 0.2^2) clipped to [-1, 1], "
                              "sc-*); default: the architecture's")
    p_train.add_argument("--noise", metavar="KIND:LEVEL",
                         help="NSM noise: bernoulli:P (blank-out, default bernoulli:0.5) or "
                              "gaussian:SIGMA (xi ~ N(1, SIGMA^2))")
    p_train.add_argument("--estimator", choices=["erf", "binconcrete", "released"],
                         help="NSM gradient: erf (paper 2.3, default), binconcrete (SI 4.6), "
                              "released (the released code's BinConcrete forward, log(phi) "
                              "logit)")
    p_train.add_argument("--noise-site", choices=["synapse", "input"],
                         help="NSM linear layers: noise per synapse (paper, default) or per "
                              "input neuron (the released code)")
    p_train.add_argument("--no-data-init", action="store_true",
                         help="NSM: skip eq. 8's data-dependent init (as the released code)")
    p_train.add_argument("--states", type=int, choices=[3, 5, 7, 9, 11],
                         help="sc-*: quantization states of inputs and weights (default 5)")
    p_train.add_argument("--sc-length", type=_positive, metavar="BITS",
                         help="sc-*: train with bitstreams of this length in the forward pass "
                              "(paper 003's Method 2; default: Method 1, no SC in training)")
    p_train.add_argument("--sampling-aware", nargs="?", const="full", metavar="COIN",
                         help="scANN networks: train through the coins (issue 20) of COIN: full "
                              "(ideal, when no COIN is given), 8 or 4 (b-bit coins) or "
                              "nonideal:bits=4,bias=B,spread=S,stuck=F,seed=N (default: off, "
                              "the paper's post-hoc conversion)")
    p_train.add_argument("--sa-estimator", choices=["lrt", "ste"],
                         help="sampling-aware gradient: lrt (local reparameterisation of the "
                              "pre-activation, default) or ste (straight-through on sampled "
                              "weights)")
    p_train.add_argument("--calibration-items", type=int, metavar="N",
                         help="keep N training items (a seeded random subset) out of training; "
                              "evaluate fits temperature scaling and conformal sets on them "
                              "(default 0: train on all, as the papers)")
    p_train.add_argument("--data-path",
                       help="local copy of the dataset instead of the cache (default: the "
                            "cache, fetched when missing)")
    p_train.add_argument("--device", help="torch device, e.g. cuda (default cpu)")
    p_train.set_defaults(func=cmd_train)

    sampling = argparse.ArgumentParser(add_help=False)
    sampling.add_argument("--samples", type=_positive,
                          help="passes K (default 1000; 100 for the nsm-* experiments, as "
                               "paper 002; 10 SC inferences per item for sc-mnist, 20 for "
                               "spinbayes-mnist)")
    sampling.add_argument("--mode", default="shared", choices=["shared", "independent"],
                          help="shared: one draw per pass for all items; independent: fresh "
                               "draws per item (slow) (default shared)")
    sampling.add_argument("--seed", type=int, default=0,
                          help="same seed, same votes (default 0)")
    sampling.add_argument("--limit", type=_positive,
                          help="sample only the first N test items (default: all)")
    sampling.add_argument("--data-path",
                       help="local copy of the dataset instead of the cache (default: the "
                            "cache, fetched when missing)")
    sampling.add_argument("--adaptive", type=float, metavar="CONFIDENCE",
                          help="stop sampling an item once its plurality is settled at this "
                               "confidence, e.g. 0.999 (default: every item gets K passes)")
    sampling.add_argument("--min-samples", type=_positive, default=32,
                          help="with --adaptive: passes every item gets at least (default 32)")
    sampling.add_argument("--device", help="torch device for sampling, e.g. cuda (default cpu)")

    from synsample.cluster import RUNNERS, RunnerConfig

    default = RunnerConfig()
    distributed = argparse.ArgumentParser(add_help=False)
    distributed.add_argument("--runner", default=default.name, choices=list(RUNNERS),
                             help="local: this process; ray: a Ray cluster (pip install "
                                  "'synsample[ray]'), the jobs of reproduce in parallel, the "
                                  "passes of sample / evaluate sharded over the workers by items "
                                  f"(default {default.name})")
    distributed.add_argument("--address", metavar="auto|HOST:PORT",
                             help="with --runner ray: the cluster to join, `auto` for the one "
                                  "`ray start` runs here (default: start a local one on this "
                                  "machine's cores)")
    distributed.add_argument("--workers", type=_positive,
                             help="with --runner ray: jobs or shards at once, each with CPUs / "
                                  "workers threads (default: one per CPU of the cluster)")

    from synsample.methods import METHODS

    converted = argparse.ArgumentParser(add_help=False)
    converted.add_argument("--checkpoint", required=True, nargs="+", metavar="DIR",
                           help="folder written by `train` (several: the members of "
                                "--method ensemble)")
    converted.add_argument("--method", choices=sorted(METHODS),
                           help="how to sample the network (default: its architecture's: scann "
                                "for mlp/conv, nsm for nsm-*/stnn-mlp, sc for sc-*, bbb for "
                                "lenet5-bbb, mc-dropout / mc-dropconnect for lenet5-dropout / "
                                "-dropconnect); spinbayes samples a lenet5-bbb into crossbars")
    converted.add_argument("--precision", default="full",
                           help="coin precision: full, or bits such as 8 or 4 (default full); "
                                "for sc: the LFSR width or the MTJ's bias DAC bits; for "
                                "spinbayes: the crossbars' Q bits (full: 4)")
    converted.add_argument("--stream-length", type=_positive, metavar="BITS",
                           help="sc: bits per bitstream (default 100)")
    converted.add_argument("--bitstream", choices=["ideal", "lfsr", "mtj"],
                           help="sc: the bitstream source (default ideal)")
    converted.add_argument("--cost-assumptions", metavar="FILE",
                           help="JSON file of energies per operation, random bit and weight bit "
                                "read that replace the defaults (see synsample.hardware)")
    converted.add_argument("--sc-path", choices=["fast", "bits"],
                           help="sc: draw each counter from its distribution (fast, default) or "
                                "simulate every stream bit (bits: exact for an LFSR, slow)")

    p_sample = sub.add_parser(
        "sample", parents=[common, converted, sampling, distributed],
        help="sample a trained network K times and report",
        description="Convert a checkpoint with a method, sample it K times on its test set and "
                    "write a report (accuracy, first and second choice, entropy, figures).")
    p_sample.add_argument("--batch-size", type=_positive,
                          help="test items per block (memory; votes do not depend on it; "
                               "default: as many as fit in 512 MiB)")
    p_sample.add_argument("--out", help="report folder (default runs/sample-...)")
    p_sample.set_defaults(func=cmd_sample)

    p_eval = sub.add_parser(
        "evaluate", parents=[common, converted, sampling, distributed, tracked],
        help="every uncertainty metric and OoD detection for a trained network",
        description="Sample a checkpoint on its test set and on every built-in OoD set; report "
                    "accuracy, calibration (NLL, Brier, ECE, adaptive ECE, reliability), "
                    "uncertainty scores and ratios, and OoD detection (AUROC, AUPR, FPR@95TPR, "
                    "paper 004's quantile rule).")
    p_eval.add_argument("--score", default="vote-entropy",
                        choices=["vote-entropy", "predictive-entropy", "mutual-information",
                                 "variation-ratio", "max-probability"],
                        help="uncertainty score for the ratios and the main OoD columns "
                             "(default vote-entropy)")
    p_eval.add_argument("--ood-items", type=_positive, default=2000,
                        help="items per OoD set (default 2000)")
    p_eval.add_argument("--skip-ood", action="append", default=[], metavar="SET",
                        choices=list(OOD_SETS),
                        help="leave this OoD set out (repeatable; default: none, and a set "
                             "whose data is missing or corrupt is an error)")
    p_eval.add_argument("--alpha", type=_fraction, nargs="+", default=[0.05, 0.1],
                        help="miscoverage levels of the conformal sets, calibrated on the "
                             "checkpoint's held-out training items (train --calibration-items; "
                             "default 0.05 0.1)")
    p_eval.add_argument("--out", help="report folder (default runs/evaluate-...)")
    p_eval.set_defaults(func=cmd_evaluate)

    p_export = sub.add_parser(
        "export", parents=[common], help="write a sampled network's levels for hardware",
        description="Export a checkpoint as its method would run on hardware: per sampled "
                    "layer the signed probability levels (scann), the quantized state indices "
                    "(sc) or the N quantized crossbars (spinbayes), and the rest of the model, "
                    "in a safetensors file with a versioned JSON manifest (shapes, encodings, "
                    "levels) beside it. synsample.export.load reads it back into a model that "
                    "gives the same votes for the same seed.")
    p_export.add_argument("--checkpoint", required=True, help="folder written by `train`")
    p_export.add_argument("--method", required=True, choices=["scann", "sc", "spinbayes"],
                          help="the method whose hardware tensors to write")
    p_export.add_argument("--precision", default="full",
                          help="coin bits (scann), LFSR/MTJ bits (sc) or crossbar Q bits "
                               "(spinbayes); default full")
    p_export.add_argument("--stream-length", type=_positive, default=100, metavar="BITS",
                          help="sc: bits per bitstream (default 100)")
    p_export.add_argument("--bitstream", default="ideal", choices=["ideal", "lfsr", "mtj"],
                          help="sc: the bitstream source (default ideal)")
    p_export.add_argument("--data-path", help="spinbayes: local copy of the training data for "
                                              "the BatchNorm re-calibration (default: the "
                                              "cache)")
    p_export.add_argument("--out", required=True, help="file to write (.safetensors; the "
                                                       "manifest goes beside it as .json)")
    p_export.set_defaults(func=cmd_export)

    p_rep = sub.add_parser(
        "reproduce", parents=[common, sampling, distributed, tracked],
        help="reproduce a paper's table or figure",
        description="Run a paper experiment as a grid of cached jobs and write its report. "
                    "scann-table1: Table I of paper 000 (default: the MNIST MLP row). "
                    "scann-entropy: Fig. 6, entropy of correct and incorrect items. "
                    "scann-holdout: Fig. 7, one class under-represented in training. "
                    "nsm-pi-mnist: paper 002 Table 1 and Fig. 2 (NSM vs StNN, 784-300x3-10). "
                    "nsm-mnist-conv: paper 002 Table 2 (bNSM, gNSM, dCNN). "
                    "nsm-scale-invariance: paper 002 section 3.2 (weights x 0.1 at inference). "
                    "sc-mnist: paper 003 Fig. 6 (quantized stochastic computing, Methods 1 and "
                    "2, 5 and 11 states, stream lengths) and its bitstream energy. "
                    "spinbayes-mnist: paper 004 Tables 1 and 3 on MNIST with LeNet-5 (SpinBayes, "
                    "Bayes-by-Backprop, MC-Dropout, MC-DropConnect, deep ensemble), n-way "
                    "inference, a Q x N sweep, memory, energy. "
                    "robustness: the scANN MLP (or --method mc-dropconnect, mc-dropout) against "
                    "device bias, spread, stuck devices, correlated bits and drift, "
                    "and precision against the number of samples (paper 000, section IV). "
                    "costs: every method on MNIST at 20 passes, accuracy and OoD AUROC beside "
                    "the energy, random bits and weight memory of one inference.")
    p_rep.add_argument("experiment", choices=["scann-table1", "scann-entropy", "scann-holdout",
                                              "nsm-pi-mnist", "nsm-mnist-conv",
                                              "nsm-scale-invariance", "sc-mnist",
                                              "spinbayes-mnist", "robustness", "costs"])
    p_rep.add_argument("--dataset", choices=["mnist", "fashion-mnist"],
                       help="one dataset (default: MNIST for scann-table1, both for "
                            "scann-entropy and robustness)")
    p_rep.add_argument("--arch", default="mlp", choices=["mlp", "conv"],
                       help="scann-*: the network, paper 000's MLP or conv net (default mlp)")
    p_rep.add_argument("--all-rows", action="store_true",
                       help="all four rows: MNIST and Fashion-MNIST x MLP and conv")
    p_rep.add_argument("--epochs", type=_positive,
                       help="training epochs (default: scANN 100 for the MLP, 10 for the conv "
                            "net; NSM 30 for the MLPs, 10 for the conv nets; SC and LeNet-5 "
                            "10)")
    p_rep.add_argument("--holdout-class", type=int, default=9,
                       help="scann-holdout: the class to under-represent (default 9)")
    p_rep.add_argument("--fractions", default=(0.0, 0.5, 0.9, 0.99), type=_percentages,
                       help="scann-holdout: percentages of the class removed (default "
                            "0,50,90,99)")
    p_rep.add_argument("--lengths", type=_lengths,
                       help="sc-mnist: stream lengths in bits (default 100,300,500)")
    p_rep.add_argument("--full", action="store_true",
                       help="sc-mnist: the paper's lengths 100,200,300,400,500")
    p_rep.add_argument("--bitstream", default="ideal", choices=["ideal", "lfsr", "mtj"],
                       help="sc-mnist: the bitstream source at inference (default ideal)")
    p_rep.add_argument("--no-sweep", action="store_true",
                       help="spinbayes-mnist: skip the Q x N quantization sweep")
    p_rep.add_argument("--method", choices=["scann", "mc-dropconnect", "mc-dropout"],
                       help="robustness: the method whose coins are imperfect (default scann; "
                            "mc-dropconnect, mc-dropout: LeNet-5's mask coins)")
    p_rep.add_argument("--training", default="post-hoc",
                       choices=["post-hoc", "sampling-aware"],
                       help="scann-table1, scann-holdout, robustness: post-hoc (the paper's "
                            "conversion after ordinary training, default) or sampling-aware "
                            "(trained through the coins, issue 20; scann-table1 puts both side "
                            "by side)")
    p_rep.add_argument("--train-coin", default="full", metavar="COIN",
                       help="--training sampling-aware: the coins trained through, full, 8, 4 "
                            "or nonideal:bits=4,bias=B,spread=S,stuck=F,seed=N (default full)")
    p_rep.add_argument("--sa-estimator", default="lrt", choices=["lrt", "ste"],
                       help="--training sampling-aware: the gradient estimator (default lrt)")
    p_rep.add_argument("--cost-assumptions", metavar="FILE",
                       help="costs: JSON file of energies that replace the defaults (see "
                            "synsample.hardware)")
    p_rep.add_argument("--out", help="report folder (default runs/EXPERIMENT)")
    p_rep.add_argument("--jobs", default=str(Path("runs") / "jobs"),
                       help="job store shared by experiments (default runs/jobs; finished jobs "
                            "are reused)")
    p_rep.set_defaults(func=cmd_reproduce)
    p_bench = sub.add_parser(
        "bench", parents=[common], help="time the sampling modes against the fp32 ceiling",
        description="Time K sampled passes (shared and independent mode) against K plain fp32 "
                    "passes (the ceiling) and a naive torch.bernoulli loop, for the MNIST MLP "
                    "and the conv net's dense head; ratios from one run, median of repeats.")
    p_bench.add_argument("--items", type=_positive, default=10000,
                         help="MLP test items (default 10000)")
    p_bench.add_argument("--samples", type=_positive, default=1000,
                         help="MLP passes K (default 1000)")
    p_bench.add_argument("--conv-items", type=_positive, default=2000,
                         help="conv-head items (default 2000)")
    p_bench.add_argument("--conv-samples", type=_positive, default=200,
                         help="conv-head passes (default 200)")
    p_bench.add_argument("--independent-items", type=_positive, default=1000,
                         help="MLP items timed in independent mode, scaled to --items "
                              "(default 1000)")
    p_bench.add_argument("--independent-samples", type=_positive, default=1000,
                         help="passes timed in independent mode, scaled to --samples "
                              "(default 1000)")
    p_bench.add_argument("--repeats", type=_positive, default=3,
                         help="timed repetitions per row; the median is reported (default 3)")
    p_bench.add_argument("--out", default=str(Path("runs") / "bench"),
                         help="folder for bench.json and bench.md (default runs/bench)")
    p_bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.quiet = getattr(args, "quiet", False)  # -q may stand before or after the command
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command, with every error a user can cause turned into one line."""
    try:
        if getattr(args, "device", None) is not None:
            checks.device(args.device)
        return args.func(args)
    except SynsampleError as exc:
        return _fail(str(exc))
    except MemoryError:
        return _fail("out of memory; lower --samples, --limit, --batch-size or "
                     "--stream-length")
    except OSError as exc:  # a disk full, a folder removed under a run, a permission lost
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}; finished work is kept, fix it and run "
                     "the same command again")
    except KeyboardInterrupt:
        print("synsample: interrupted; finished work is kept, run the same command to resume",
              file=sys.stderr)
        return 130


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, like an error (no source line under it)."""
    print(f"synsample: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _fail(message: str) -> int:
    """The one line a user error gets, on stderr; exit status 2."""
    print(f"synsample: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
