"""The droplab command line: the only place that parses arguments.

    droplab list
    droplab run ID [--profile P] [--set key=value ...] [--out DIR] [--resume]
    droplab reproduce [--profile P] [--only ID ...] [--out DIR] [--fresh]
    droplab report RUN_DIR... [--out DIR]
    droplab claims [ID ...] [--json | --markdown]
    droplab sweep ID --grid key=v1,v2 [--seeds N] [--workers K] [--backend local|ray] [--resume]
    droplab data NAME [--split S] [--download]

Global options: ``--data-dir`` (sets ``$DROPLAB_DATA``), ``--threads`` (torch CPU threads, default
:data:`DEFAULT_THREADS` for a run, every experiment of ``reproduce`` and every sweep point alike:
float sums are split by thread, so results depend on the count).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from droplab.experiments.claims import PROFILE_NAMES

DEFAULT_THREADS = 1


def _parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with local dataset files (default $DROPLAB_DATA or ~/.droplab/data).")
@click.option("--threads", type=click.IntRange(1), default=DEFAULT_THREADS, show_default=True,
              help="torch CPU threads of a run and of each sweep point (results depend on it: float sums).")
@click.version_option(package_name="droplab")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None, threads: int) -> None:
    """droplab: dropout variants, analyses and the reproduction of four papers' claims."""
    if data_dir:
        os.environ["DROPLAB_DATA"] = data_dir
    if ctx.invoked_subcommand != "claims":  # listing the registry reads claims.toml files and imports no torch
        import torch

        torch.set_num_threads(threads)


@main.command("list")
def list_cmd() -> None:
    """One experiment per line: id, paper, what it reproduces."""
    from droplab.experiments import all_experiments

    exps = all_experiments()
    width = max(len(e.id) for e in exps)
    for e in exps:
        click.echo(f"{e.id:<{width}}  {e.paper}: {e.reproduces}")


profile_opt = click.option("--profile", type=click.Choice(PROFILE_NAMES), default="quick", show_default=True,
                           help="smoke: seconds (CI); quick: CPU minutes; paper: the papers' settings.")


@main.command()
@click.argument("ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print docs/claims.md.")
def claims(ids: tuple[str, ...], as_json: bool, as_markdown: bool) -> None:
    """List registered claims and checks (all, or of the experiment / claim IDs given), without running."""
    import json

    from droplab.experiments import claim_listing
    from droplab.reports import registry_markdown, registry_text

    listing = claim_listing(ids)
    if as_json:
        click.echo(json.dumps(listing, indent=2, ensure_ascii=False))
    elif as_markdown:
        click.echo(registry_markdown(listing), nl=False)
    else:
        click.echo(registry_text(listing))


@main.command()
@click.argument("experiment_id")
@profile_opt
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/PROFILE/ID).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out, reusing finished stages.")
@click.option("--device", default=None, help="torch device, e.g. cpu or cuda.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run(experiment_id: str, profile: str, sets: tuple[str, ...], out: str | None, resume: bool,
        device: str | None, print_config: bool, no_progress: bool) -> None:
    """Run one experiment and write its report next to its run directory."""
    from droplab.experiments import claim_listing, claims_hash, get_experiment, run_experiment
    from droplab.reports import write_report

    overrides = _parse_sets(sets)
    if device:
        overrides["device"] = device
    exp = get_experiment(experiment_id)
    if print_config:
        click.echo(exp.config.for_profile(profile, overrides).describe())
        return
    path = Path(out or Path("runs") / profile / experiment_id)
    ctx = run_experiment(exp, path, profile=profile, overrides=overrides, resume=resume, progress=not no_progress)
    html_path, _ = write_report([path], path, current_hash=claims_hash(), current_listing=claim_listing())
    for c in ctx.claims:
        click.echo(f"[{c.kind} {c.verdict}] {c.id}: {c.statement}" + (f" ({c.reason})" if c.reason else ""))
    click.echo(f"run directory: {path}\nreport: {html_path}")


@main.command()
@profile_opt
@click.option("--only", multiple=True, metavar="ID", help="Run only experiments whose id starts with this.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the run directories and the report (default runs/reproduce-PROFILE).")
@click.option("--fresh", is_flag=True, help="Delete the selected experiments' run directories and start over.")
@click.option("--resume", is_flag=True, hidden=True)  # the default since reruns resume; kept for old command lines
@click.option("--device", default=None, help="torch device, e.g. cpu or cuda.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Experiments run side by side, each with --threads torch threads (default: cores // threads).")
def reproduce(profile: str, only: tuple[str, ...], out: str | None, fresh: bool, resume: bool, device: str | None,
              no_progress: bool, workers: int | None) -> None:
    """Run every registered experiment and write the report (claims table first).

    A rerun resumes: complete experiments are reused, unfinished ones continue (--fresh starts over).
    One line per experiment started and finished goes to stderr, with k of N and an ETA.
    """
    from tqdm.auto import tqdm

    from droplab.experiments import claim_listing, claims_hash
    from droplab.experiments import reproduce as run_all
    from droplab.reports import write_report

    if fresh and resume:
        raise click.UsageError("--fresh and --resume exclude each other (reruns resume by default)")
    path = Path(out or Path("runs") / f"reproduce-{profile}")
    if workers is None:
        import torch

        workers = max(1, (os.cpu_count() or 1) // torch.get_num_threads())
    dirs, failed = run_all(path, profile=profile, only=only, fresh=fresh, progress=not no_progress,
                           overrides={"device": device} if device else None,
                           log=lambda line: tqdm.write(line, file=sys.stderr), workers=workers)
    html_path, md_path = write_report(dirs, path, current_hash=claims_hash(), current_listing=claim_listing())
    click.echo(f"report: {html_path}\nmarkdown: {md_path}")
    if failed:
        raise click.ClickException(f"{len(failed)} experiment(s) failed: {', '.join(failed)}; their run.json and "
                                   "traceback.txt say why; rerun to retry them (finished work is kept)")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where report.html and report.md go (default: the first RUN_DIR).")
@click.option("--metric", "metrics", multiple=True, help="Sweeps: the metrics to plot across the grid.")
@click.option("--docs", "docs_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Also rewrite the '<!-- droplab:results ID ... -->' blocks of this folder's Markdown files.")
def report(run_dirs: tuple[str, ...], out: str | None, metrics: tuple[str, ...], docs_dir: str | None) -> None:
    """Write one HTML page and a Markdown file for run directories, folders of them, or a sweep."""
    from droplab.experiments import claim_listing, claims_hash
    from droplab.reports import expand_run_dirs, load_run, update_docs, write_report, write_sweep_report

    if len(run_dirs) == 1 and (Path(run_dirs[0]) / "sweep.json").is_file():
        html_path, md_path = write_sweep_report(Path(run_dirs[0]), Path(out) if out else None, list(metrics) or None)
    else:
        html_path, md_path = write_report([Path(p) for p in run_dirs], Path(out or run_dirs[0]),
                                          current_hash=claims_hash(), current_listing=claim_listing())
    click.echo(f"report: {html_path}\nmarkdown: {md_path}")
    if docs_dir:
        runs = [load_run(p) for p in expand_run_dirs([Path(p) for p in run_dirs])]
        for path in update_docs(runs, Path(docs_dir)):
            click.echo(f"updated: {path}")


@main.command()
@click.argument("experiment_id")
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2,...",
              help="An axis of the grid (repeatable); tuple values use ';' between items, quoted for the "
                   "shell: --grid 'hidden=32;32,64;64'.")
@click.option("--seeds", type=int, default=1, show_default=True, help="Seeds 0..N-1 per grid point.")
@profile_opt
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Fixed overrides for every point.")
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel points (local pool or Ray).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Sweep directory (default runs/PROFILE/sweep-ID).")
@click.option("--resume", is_flag=True, help="Run only the points that are missing or failed.")
@click.option("--no-progress", is_flag=True, help="Hide the progress display.")
def sweep(experiment_id: str, grid: tuple[str, ...], seeds: int, profile: str, sets: tuple[str, ...], workers: int,
          backend: str, address: str | None, out: str | None, resume: bool, no_progress: bool) -> None:
    """Run the Cartesian product of --grid axes × seeds, then write the sweep report."""
    from droplab.reports import write_sweep_report
    from droplab.sweeps import check_options, make_sweep, parse_axes, run_sweep, write_manifest

    check_options(workers=workers, backend=backend, address=address)
    sw = make_sweep(experiment_id, parse_axes(list(grid)), seeds=seeds, profile=profile, base=_parse_sets(sets))
    path = Path(out or Path("runs") / profile / f"sweep-{experiment_id}")
    write_manifest(path, sw, resume)
    statuses = run_sweep(sw, path, workers=workers, backend=backend, address=address, progress=not no_progress)
    html_path, _ = write_sweep_report(path)
    bad = sorted(name for name, st in statuses.items() if st != "complete")
    click.echo(f"sweep directory: {path}\nreport: {html_path}")
    if bad:
        raise click.ClickException(f"{len(bad)} point(s) not complete ({', '.join(bad)}); see their traceback.txt "
                                   "and rerun with --resume")


@main.command()
@click.argument("name")
@click.option("--split", type=click.Choice(["train", "test"]), default=None,
              help="Only this split (default: both).")
@click.option("--download", is_flag=True, help="Fetch missing files of a real dataset (network).")
def data(name: str, split: str | None, download: bool) -> None:
    """Check (or with --download fetch) a dataset; print each split's size and class counts."""
    from droplab import data as _data

    options = {"download": True} if download else {}
    for s in [split] if split else list(_data.SPLITS):
        ds = _data.load(name, s, **options)
        click.echo(f"{name} {s}: {len(ds)} examples, x {tuple(ds.x.shape)}, y {tuple(ds.y.shape)}, "
                   f"classes {ds.n_classes}")
        counts = ds.class_counts()
        if counts is not None:
            click.echo("  per class: " + " ".join(f"{c}:{k}" for c, k in enumerate(counts)))


def entry() -> None:
    """Console entry: one-line errors for bad input and unusable paths, a resume hint on Ctrl-C."""
    try:
        main(prog_name="droplab", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted: finished work is saved; rerun the same command (run and sweep: with --resume) "
                   "to continue", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        hint = f" (see {exc.ctx.command_path} -h)" if exc.ctx else ""
        click.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ValueError, TypeError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    entry()
