"""The synsample command line. Errors a user can cause print one line and exit 2."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from synsample import __version__, checks
from synsample.config_args import argparse_type, fraction, positive_int
from synsample.errors import ConfigError, SynsampleError
from synsample.io import folder_lock

_POSITIVE = argparse_type(positive_int)
_FRACTION = argparse_type(fraction)


class _UsageError(Exception):
    """A command line argparse cannot read (an unknown option, a value of the wrong kind)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors turned into the one line every user error gets (and its
    pointer to the help), instead of the usage block and argparse's own exit."""

    def error(self, message: str):
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _log(args: argparse.Namespace):
    return (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))


def cmd_data_fetch(args: argparse.Namespace) -> int:
    """``synsample data fetch``: fetch each dataset into the cache and verify it.

    Args:
        args: the parsed command line.

    Returns:
        the exit status (0; a user error raises and becomes status 2 in
        [`main`][synsample.cli.main]).
    """
    from synsample import data

    for name in args.names:
        paths = data.fetch(name, force=args.force, log=_log(args))
        print(f"{data.spec(name).name}: verified, in {paths[0].parent}")
    return 0


def cmd_devices_test(args: argparse.Namespace) -> int:
    """``synsample devices test``: [`test_stream`][synsample.devices.quality.test_stream] of a
    recording.

    Args:
        args: the parsed command line.

    Returns:
        the exit status (0 whether or not the stream passes; 2 for a user error).
    """
    from synsample.devices import quality
    from synsample.io import write_json

    if args.json:
        checks.writable_file(args.json, "JSON report")
    bits = quality.read_bits(args.file, args.format, args.max_bits)
    report = quality.test_stream(bits, args.alpha, args.max_lag)
    p, low, high = report.ones
    print(f"{args.file}: {report.bits:,} bits")
    print(f"  ones {p:.5f} (99% interval {low:.5f} .. {high:.5f}); min-entropy "
          f"{report.min_entropy:.4f} bits per bit (SP 800-90B MCV)")
    lags = ", ".join(f"{r:+.4f}" for r in report.autocorrelation)
    print(f"  autocorrelation at lags 1..{len(report.autocorrelation)}: {lags} "
          f"(bound +-{report.correlation_bound:.4f})")
    for name, value in report.p_values.items():
        verdict = "pass" if value >= report.alpha else "FAIL"
        print(f"  {name:<34} P = {value:.6f}  {verdict}")
    xors = ("passes as it is" if report.xors_to_pass == 1 else
            f"passes after XORing {report.xors_to_pass} parts" if report.xors_to_pass else
            "does not pass after XORing up to 4 parts")
    print(f"{'PASS' if report.passed else 'FAIL'} at alpha {args.alpha:g} for the whole "
          f"family (each test at {report.alpha:.2g})"
          + ("" if report.passed else f" ({'; '.join(report.failed)})") + f"; the stream {xors}")
    if args.json:
        write_json(args.json, report.to_json())
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    """``synsample data list``: what is cached, verified or not, and where.

    Args:
        args: the parsed command line.

    Returns:
        the exit status (0; a user error raises and becomes status 2 in
        [`main`][synsample.cli.main]).
    """
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
    """``synsample train``: a [`TrainConfig`][synsample.train.TrainConfig] from the options (the
    architecture's defaults for those not given), trained into ``--out``, tracked with ``--track``.

    Args:
        args: the parsed command line.

    Returns:
        the exit status (0; a user error raises and becomes status 2 in
        [`main`][synsample.cli.main]).
    """
    from synsample.config_args import given_values
    from synsample.train import TrainConfig, train

    given = given_values(TrainConfig, args)
    cfg = TrainConfig.for_arch(given.pop("arch") or TrainConfig.arch, **given)
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
    """``synsample sample``:
    [`synsample.evaluate.sample_to_report`][synsample.evaluate.sample_to_report] on the checkpoint,
    then one summary line and the cost of one inference.

    Args:
        args: the parsed command line.

    Returns:
        the exit status (0; a user error raises and becomes status 2 in
        [`main`][synsample.cli.main]).
    """
    from synsample import checkpoint
    from synsample.evaluate import method_for, sample_to_report

    run = _sampling(args)
    ck = Path(args.checkpoint[0])
    ck_config = checkpoint.read_config(ck)
    args.method = method_for(ck_config, args.method)
    options = _method_options(args)
    out = _report_folder(args, ck, "sample")
    with _new_report(out):
        res = sample_to_report(ck, out, args.method, args.precision, run.samples, run.seed,
                               run.mode, run.data_path, run.limit, _progress(args),
                               options, args.cost_assumptions,
                               batch_size=args.batch_size, adaptive=run.adaptive_stop(),
                               device=run.device, **_sharded(args))
    s = res["sampled"]
    print(f"{ck_config['dataset']} {ck_config['arch']}: {res['reference']} "
          f"{100 * res['deterministic_accuracy']:.2f}%, {args.method} {args.precision} "
          f"first choice {100 * s['accuracy']:.2f}% over {args.samples} passes "
          f"(mean entropy {s['mean_entropy']:.3f} bits, {s['sampling_seconds']:.1f} s)")
    _print_cost(res["cost"], args.samples)
    print(f"report: {out / 'report.md'}")
    return 0


def _print_cost(cost: dict, samples: int) -> None:
    per = cost["per_inference"]
    print(f"  cost per inference ({samples} passes): {per['energy_nj']:,.1f} nJ, "
          f"{sum(per['random_bits'].values()):,.0f} random bits, weight memory "
          f"{cost['memory_bytes'] / 1024:,.1f} KiB")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``synsample evaluate``:
    [`synsample.evaluate.evaluate_checkpoint`][synsample.evaluate.evaluate_checkpoint] on the
    checkpoint, then a few summary lines.

    Args:
        args: the parsed command line.

    Returns:
        the exit status (0; a user error raises and becomes status 2 in
        [`main`][synsample.cli.main]).
    """
    from synsample import checkpoint, hardware
    from synsample.evaluate import evaluate_checkpoint, method_for

    run = _sampling(args)
    ck = Path(args.checkpoint[0])
    args.method = method_for(checkpoint.read_config(ck), args.method)
    options = _method_options(args)
    out = _report_folder(args, ck, "evaluate")
    assumptions = hardware.load_assumptions(args.cost_assumptions)  # fails before sampling
    from synsample import tracking

    params = {k: v for k, v in vars(args).items() if k != "func"}
    with _new_report(out), tracking.run(_tracking(args), f"evaluate {args.method} "
                                        f"{args.precision} {ck.name}", params,
                                        {"synsample.command": "evaluate"}) as tracker:
        res = evaluate_checkpoint(
            ck, out, args.method, args.precision, run.samples, run.seed, run.mode,
            args.score, args.ood_items, None, run.data_path, run.limit, _progress(args),
            adaptive=run.adaptive_stop(), device=run.device, method_options=options,
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
    """``--out``, or ``runs/COMMAND-CHECKPOINT-METHOD-PRECISION-TIME``, checked writable and
    holding no earlier report ([`_no_earlier_report`][synsample.cli._no_earlier_report])."""
    out = Path(args.out or Path("runs") / f"{command}-{ck.name}-{args.method}-{args.precision}-"
               f"{time.strftime('%Y%m%d-%H%M%S')}")
    return _no_earlier_report(checks.writable_folder(out, "report folder"))


def _no_earlier_report(out: Path) -> Path:
    """``out``, refused when it holds an earlier run's report: two reports (and their figures)
    are never mixed in one folder."""
    earlier = [name for name in ("report.md", "metrics.json") if (out / name).exists()]
    if earlier:
        raise ConfigError(f"{out} already holds a report ({earlier[0]}, from an earlier run); "
                          "synsample does not mix two reports in one folder: give another "
                          "--out, or leave --out out for a new dated folder")
    return out


@contextmanager
def _new_report(out: Path) -> Iterator[Path]:
    """The report folder's lock, and again the check that no other run wrote a report there
    since [`_report_folder`][synsample.cli._report_folder] looked."""
    with folder_lock(out):
        yield _no_earlier_report(out)


def cmd_export(args: argparse.Namespace) -> int:
    """``synsample export``: [`synsample.export.export`][synsample.export.export] of the checkpoint.

    Args:
        args: the parsed command line.

    Returns:
        the exit status (0; a user error raises and becomes status 2 in
        [`main`][synsample.cli.main]).
    """
    from synsample import export

    out = export.writable_export(args.out)
    manifest = export.export(args.checkpoint, args.method, out, args.precision,
                             args.stream_length, args.bitstream, args.data_path)
    print(f"{manifest['config']['arch']}, {args.method} {args.precision}: "
          f"{len(manifest['layers'])} sampled layers written to {out} "
          f"(manifest {out.with_suffix('.json')}); read back with synsample.export.load")
    return 0


def _method_options(args: argparse.Namespace) -> dict:
    """What the method needs beyond the coin precision (sc: stream length and source; an
    ensemble: its other members)."""
    from synsample import methods

    folders = [Path(c).resolve() for c in args.checkpoint]
    if len(set(folders)) < len(folders):
        twice = next(f for f in folders if folders.count(f) > 1)
        raise ConfigError(f"--checkpoint names {twice} more than once; an ensemble's members "
                          "are different trained networks")
    if args.method is not None and methods.get(args.method).many_models and len(folders) < 2:
        raise ConfigError(f"--method {args.method} needs at least two checkpoints (--checkpoint "
                          "A B ...), one per member trained with its own seed")
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


def _sampling(args: argparse.Namespace):
    """``sample`` / ``evaluate``'s sampling options as their dataclass, checked."""
    from synsample.config_args import config_from_args
    from synsample.evaluate import SamplingOptions

    run = config_from_args(SamplingOptions, args)
    run.check()
    return run


def _runner(args: argparse.Namespace):
    """Where the jobs (or the shards of a sampling run) go: ``--runner``, ``--address``,
    ``--workers``."""
    from synsample.cluster import RunnerConfig

    cfg = RunnerConfig(name=args.runner, address=args.address, workers=args.workers)
    cfg.check()
    if cfg.name == "ray":
        from synsample.cluster import answers, import_ray

        import_ray()  # the missing extra is named before any work
        answers(cfg.address)  # and a head node that does not answer
    return cfg


def _tracking(args: argparse.Namespace):
    """MLflow tracking (``--track``, ``--tracking-uri``), or None when off."""
    if not args.track:
        if args.tracking_uri is not None:
            raise ConfigError("--tracking-uri goes with --track")
        return None
    from synsample.tracking import TrackingConfig, import_mlflow

    import_mlflow()  # the missing extra is named before any work
    cfg = TrackingConfig(enabled=True, uri=args.tracking_uri)
    cfg.check()  # a bad URI or a server that does not answer, before any work
    return cfg


def _sharded(args: argparse.Namespace) -> dict:
    """``sample`` / ``evaluate`` with ``--runner ray``: every predict sharded over the workers
    by items (`synsample.shards`)."""
    runner = _runner(args)
    return {"runner": runner} if runner.name == "ray" else {}


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``synsample reproduce``: list the experiments, list one's jobs (``--dry-run``), or
    run it with [`synsample.experiments.registry.run`][synsample.experiments.registry.run] and print
    its table.

    Args:
        args: the parsed command line.

    Returns:
        the exit status (0; a user error raises and becomes status 2 in
        [`main`][synsample.cli.main]).
    """
    from dataclasses import replace

    from synsample.config_args import config_from_args
    from synsample.experiments import registry

    if args.list or args.experiment is None:
        rows = [[name, registry.get(name).title] for name in registry.names()]
        from synsample.report.markdown import text_table

        print(text_table(["experiment", "what it reproduces"], rows))
        print("\n`synsample reproduce EXPERIMENT --help` for its options")
        return 0
    experiment = registry.get(args.experiment)
    cfg = config_from_args(experiment.config, args, progress=_progress(args),
                           runner=_runner(args), tracking=_tracking(args))
    for preset in getattr(args, "presets", None) or ():
        cfg = replace(cfg, **experiment.presets[preset][1])
    if args.dry_run:
        planned = registry.plan(args.experiment, cfg, log=lambda line: None)
        cached = sum(done for _, done in planned)
        for job, done in planned:
            print(f"{'cached ' if done else 'to run '} {job.name}")
        print(f"\n{len(planned)} jobs, {cached} cached, {len(planned) - cached} to run; job "
              f"store {cfg.jobs}")
        return 0
    result = registry.run(args.experiment, cfg, log=_log(args))
    print("\n" + result["heading"])
    print(result["terminal_table"])
    print(f"\nreport: {result['report']}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``synsample bench``: [`synsample.benchmarks.run`][synsample.benchmarks.run], written to
    ``--out`` and printed.

    Args:
        args: the parsed command line.

    Returns:
        the exit status (0; a user error raises and becomes status 2 in
        [`main`][synsample.cli.main]).
    """
    from synsample import benchmarks

    result = benchmarks.run(items=args.items, samples=args.samples, conv_items=args.conv_items,
                            conv_samples=args.conv_samples, repeats=args.repeats,
                            independent_items=args.independent_items,
                            independent_samples=args.independent_samples, log=_log(args))
    print(benchmarks.write(result, args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (``reproduce``'s experiments and ``train``'s options are
    generated from their config dataclasses).

    Returns:
        the ``synsample`` argument parser.
    """
    from synsample.data import DATASETS
    from synsample.data.ood import OOD_SETS
    from synsample.models import ARCHS

    common = _Parser(add_help=False)
    # SUPPRESS: a subcommand's parser must not reset a -q given before the subcommand
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars or log lines, only the result (default: "
                             "shown)")
    parser = _Parser(
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

    from synsample.devices import quality

    p_dev = sub.add_parser("devices", help="test a device's recorded randomness",
                           parents=[common],
                           description="Tools for a stochastic device's own data.")
    devsub = p_dev.add_subparsers(dest="devices_command", metavar="ACTION", required=True)
    p_test = devsub.add_parser(
        "test", parents=[common], help="the quality of a recorded bit stream",
        description="Bias with its 99%% interval, autocorrelation, SP 800-90B min-entropy, the "
                    "NIST SP 800-22 tests without tables (frequency, block frequency, runs, "
                    "serial, approximate entropy, cumulative sums), and how many XORed parts "
                    "of the stream pass. Exit status 0 whether or not the stream passes; the "
                    "verdict is printed (and in --json).")
    p_test.add_argument("file", metavar="FILE", help="the recording: .npy of 0/1, .txt of the "
                                                      "characters 0 and 1, or packed binary "
                                                      "(first bit the most significant)")
    p_test.add_argument("--format", default="auto", choices=quality.FORMATS,
                        help="how FILE holds its bits (default: auto, by the suffix)")
    p_test.add_argument("--max-bits", type=_POSITIVE, default=quality.MAX_BITS, metavar="N",
                        help=f"read at most the first N bits (default {quality.MAX_BITS:,})")
    p_test.add_argument("--alpha", type=argparse_type(fraction), default=quality.ALPHA,
                        help=f"the chance that a good stream fails, over all the tests "
                             f"(Bonferroni; default {quality.ALPHA}, the standard's level)")
    p_test.add_argument("--max-lag", type=_POSITIVE, default=8, metavar="K",
                        help="autocorrelation lags tested (default 8)")
    p_test.add_argument("--json", metavar="FILE", help="also write the report as JSON here "
                                                         "(default: printed only)")
    p_test.set_defaults(func=cmd_devices_test)

    from synsample.tracking import DEFAULT_STORE

    tracked = _Parser(add_help=False)
    tracked.add_argument("--track", action="store_true",
                         help="log the run to MLflow (pip install 'synsample[track]'): config, "
                              "per-epoch loss and accuracy, final metrics, report and figures "
                              "(default: off)")
    tracked.add_argument("--tracking-uri", metavar="URI",
                         help=f"with --track: the MLflow store, a folder or a file:, sqlite: or "
                              f"http(s): URI; a server must answer within "
                              f"{checks.CONNECT_SECONDS} s (default {DEFAULT_STORE}, see "
                              f"`mlflow ui --backend-store-uri {DEFAULT_STORE}`)")

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
    from synsample.config_args import add_options
    from synsample.train import TrainConfig

    p_train.add_argument("--out", required=True, help="checkpoint folder")
    add_options(p_train, TrainConfig, given_only=True)
    p_train.add_argument("--data-path",
                         help="local copy of the dataset instead of the cache (default: the "
                              "cache, fetched when missing)")
    p_train.add_argument("--device", help="torch device, e.g. cuda (default cpu)")
    p_train.set_defaults(func=cmd_train)

    from synsample.evaluate import ALPHAS, OOD_ITEMS, SamplingOptions

    sampling = _Parser(add_help=False)
    add_options(sampling, SamplingOptions)

    from synsample.cluster import RUNNERS, RunnerConfig

    default = RunnerConfig()
    distributed = _Parser(add_help=False)
    distributed.add_argument("--runner", default=default.name, choices=list(RUNNERS),
                             help="local: this process; ray: a Ray cluster (pip install "
                                  "'synsample[ray]'), the jobs of reproduce in parallel, the "
                                  "passes of sample / evaluate sharded over the workers by items "
                                  f"(default {default.name})")
    distributed.add_argument("--address", metavar="auto|HOST:PORT",
                             help="with --runner ray: the cluster to join, `auto` for the one "
                                  "`ray start` runs here, or its head node's HOST:PORT, which "
                                  f"must answer within {checks.CONNECT_SECONDS} s (default: "
                                  "start a local one on this machine's cores)")
    distributed.add_argument("--workers", type=_POSITIVE,
                             help="with --runner ray: jobs or shards at once, each with CPUs / "
                                  "workers threads (default: one per CPU of the cluster)")

    from synsample.methods import METHODS

    converted = _Parser(add_help=False)
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
                                "for sc: the LFSR width or the MTJ's bias DAC bits (with "
                                "--bitstream lfsr or mtj; ideal streams are exact); for "
                                "spinbayes: the crossbars' Q bits, 2 to 24 (full: 4)")
    converted.add_argument("--stream-length", type=_POSITIVE, metavar="BITS",
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
    p_sample.add_argument("--batch-size", type=_POSITIVE,
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
    p_eval.add_argument("--ood-items", type=_POSITIVE, default=OOD_ITEMS,
                        help=f"items per OoD set (default {OOD_ITEMS})")
    p_eval.add_argument("--skip-ood", action="append", default=[], metavar="SET",
                        choices=list(OOD_SETS),
                        help="leave this OoD set out (repeatable; default: none, and a set "
                             "whose data is missing or corrupt is an error)")
    p_eval.add_argument("--alpha", type=_FRACTION, nargs="+", default=list(ALPHAS),
                        help="miscoverage levels of the conformal sets, calibrated on the "
                             "checkpoint's held-out training items (train --calibration-items; "
                             f"default {' '.join(map(str, ALPHAS))})")
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
    p_export.add_argument("--stream-length", type=_POSITIVE, default=100, metavar="BITS",
                          help="sc: bits per bitstream (default 100)")
    p_export.add_argument("--bitstream", default="ideal", choices=["ideal", "lfsr", "mtj"],
                          help="sc: the bitstream source (default ideal)")
    p_export.add_argument("--data-path", help="spinbayes: local copy of the training data for "
                                              "the BatchNorm re-calibration (default: the "
                                              "cache)")
    p_export.add_argument("--out", required=True, help="file to write (.safetensors is added "
                          "when the name does not end so; the manifest goes beside it as .json; "
                          "an earlier export of that name is replaced, any other file refused)")
    p_export.set_defaults(func=cmd_export)

    _add_reproduce(sub, common, distributed, tracked)
    p_bench = sub.add_parser(
        "bench", parents=[common], help="time the sampling modes against the fp32 ceiling",
        description="Time K sampled passes (shared and independent mode) against K plain fp32 "
                    "passes (the ceiling) and a naive torch.bernoulli loop, for the MNIST MLP "
                    "and the conv net's dense head; ratios from one run, median of repeats.")
    p_bench.add_argument("--items", type=_POSITIVE, default=10000,
                         help="MLP test items (default 10000)")
    p_bench.add_argument("--samples", type=_POSITIVE, default=1000,
                         help="MLP passes K (default 1000)")
    p_bench.add_argument("--conv-items", type=_POSITIVE, default=2000,
                         help="conv-head items (default 2000)")
    p_bench.add_argument("--conv-samples", type=_POSITIVE, default=200,
                         help="conv-head passes (default 200)")
    p_bench.add_argument("--independent-items", type=_POSITIVE, default=1000,
                         help="MLP items timed in independent mode, scaled to --items "
                              "(default 1000)")
    p_bench.add_argument("--independent-samples", type=_POSITIVE, default=1000,
                         help="passes timed in independent mode, scaled to --samples "
                              "(default 1000)")
    p_bench.add_argument("--repeats", type=_POSITIVE, default=3,
                         help="timed repetitions per row; the median is reported (default 3)")
    p_bench.add_argument("--out", default=str(Path("runs") / "bench"),
                         help="folder for bench.json and bench.md (default runs/bench)")
    p_bench.set_defaults(func=cmd_bench)
    return parser


def _add_reproduce(sub, common: argparse.ArgumentParser, distributed: argparse.ArgumentParser,
                   tracked: argparse.ArgumentParser) -> None:
    """``reproduce``: one subcommand per experiment of the registry, its options generated from
    the experiment's config dataclass."""
    from dataclasses import fields

    from synsample.config_args import add_options, cli_fields, flag_of
    from synsample.experiments import registry
    from synsample.experiments.options import RunOptions

    p_rep = sub.add_parser(
        "reproduce", parents=[common], help="reproduce a paper's table or figure",
        description="Run a paper experiment as a grid of cached jobs and write its report. "
                    "`synsample reproduce --list` lists the experiments; `synsample reproduce "
                    "EXPERIMENT --help` gives one experiment's options.")
    p_rep.add_argument("--list", action="store_true",
                       help="list the experiments, one line each, and exit")
    p_rep.set_defaults(func=cmd_reproduce, experiment=None)
    experiments = p_rep.add_subparsers(dest="experiment", metavar="EXPERIMENT",
                                       title="experiments")
    shared = {f.name for f in fields(RunOptions)}
    for name in registry.names():
        experiment = registry.get(name)
        p = experiments.add_parser(
            name, parents=[common, distributed, tracked], help=experiment.title,
            description=f"{experiment.title[0].upper()}{experiment.title[1:]}. "
                        f"{experiment.about}".strip(),
            epilog="Writes report.md, metrics.json and figures into the report folder. Every "
                   "training and evaluation is a job cached in the job store, reused by a "
                   "re-run and by the other experiments (--dry-run lists them).")
        own = [f for f in cli_fields(experiment.config) if f.name not in shared]
        add_options(p.add_argument_group(f"{name} options"), experiment.config, own)
        add_options(p.add_argument_group("run options"), experiment.config,
                    [f for f in cli_fields(experiment.config) if f.name in shared])
        folder = f"runs/{experiment.config().folder_name(name)}"
        for action in p._actions:  # the report folder's default, named for this experiment
            if action.dest == "out":
                action.help = action.help.replace("runs/EXPERIMENT", folder)
        flags = {f.name: flag_of(f) for f in cli_fields(experiment.config)}
        for preset, (what, values) in experiment.presets.items():
            setting = " ".join(f"{flags[k]} {' '.join(map(str, v))}" for k, v in values.items())
            p.add_argument(f"--{preset}", action="append_const", const=preset, dest="presets",
                           help=f"{what} (sets {setting})")
        p.add_argument("--dry-run", action="store_true",
                       help="list the jobs it would run and which are cached; run nothing")
        p.set_defaults(func=cmd_reproduce, experiment=name, list=False)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``).

    Args:
        argv: the arguments after ``synsample``.

    Returns:
        the exit status: 0, 2 for a user error (one line on stderr), 130 on Ctrl-C.
    """
    parser = build_parser()
    for arg in sys.argv[1:] if argv is None else argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes, kept by Python as lone surrogates
            shown = repr(os.fsencode(arg))[2:-1]
            return _fail(f"the argument '{shown}' holds bytes that are not UTF-8; synsample "
                         "writes names into JSON and Markdown reports: use a UTF-8 name")
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(str(exc))
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
