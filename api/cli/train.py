"""`tradecore train`: a model for ``indicator=model``, fitted on a recorded file and judged walk-forward."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.reporting import Commands, console, fail

app = Commands()


@app.command("train")
def train(
    data: Annotated[Path, typer.Option(help="Recorded ticks: any file `tradecore ingest file` reads.")],
    instrument: Annotated[str, typer.Option(help="The instrument the file is about.")],
    model: Annotated[str, typer.Option(help="logistic (regression) or gbm (gradient-boosted trees).")] = "logistic",
    seed: Annotated[int, typer.Option(help="Seed of the model's randomness: the same seed writes the same file.")] = 0,
    folds: Annotated[int, typer.Option(min=1, help="Walk-forward folds scored out of sample.")] = 3,
    param: Annotated[
        list[str] | None,
        typer.Option(help="k=v, repeatable: a signal setting for bars and features (bar_interval=PT0.1S, ema_fast…)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="The model file to write (skops format).")] = Path("model.skops"),
) -> None:
    """Fit a classifier of the next bar's direction on features of the signal engine's indicators, print its
    walk-forward out-of-sample accuracy beside naive forecasts, and save it for `--param model=PATH`."""
    import time

    from pydantic import ValidationError

    from domain.instruments import DEFAULT_FILE, InstrumentRegistry
    from domain.signals.config import SignalConfig
    from streams.models import store, training
    from streams.models.dataset import recorded_bars, training_set

    if model not in training.KINDS:
        raise fail(f"unknown --model {model!r}", hint=f"known: {', '.join(training.KINDS)}", code=2)
    params = dict(p.split("=", 1) for p in (param or []) if "=" in p)
    if len(params) != len(param or []):
        raise fail("--param takes k=v", code=2)
    try:
        config = SignalConfig.model_validate(params)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'signals'}: {e['msg']}" for e in err.errors())
        raise fail(f"--param: {problems}", code=2) from err
    unknown = sorted(set(params) - set(SignalConfig.model_fields))
    if unknown:
        raise fail(f"unknown --param {', '.join(unknown)}", hint=f"known: {', '.join(SignalConfig.model_fields)}")
    instruments = InstrumentRegistry.from_file(Path(os.environ.get("TRADECORE_INSTRUMENTS_FILE", DEFAULT_FILE)))
    if instrument not in instruments:
        raise fail(f"unknown instrument {instrument}", hint=f"known: {', '.join(sorted(instruments))}")

    started = time.perf_counter()
    bars = recorded_bars(data, instruments[instrument], config.bar_interval_us)
    labelled = training_set(bars, config)
    kind: training.Kind = "gbm" if model == "gbm" else "logistic"
    evaluation = training.walk_forward(labelled, kind, seed, folds)
    fitted = training.fit(labelled, kind, seed)
    model_id = store.save(fitted, config, out)
    seconds = time.perf_counter() - started

    interval = config.model_dump(mode="json")["bar_interval"]
    table = Table(title=f"walk-forward: {model} on {instrument}, {interval} bars of {data.name}")
    for column in ("fold", "train bars", "test bars", "model", "majority", "previous direction"):
        table.add_column(column, justify="right")
    for number, fold in enumerate(evaluation.folds, 1):
        table.add_row(
            str(number),
            f"{fold.train:,}",
            f"{fold.test:,}",
            f"{fold.accuracy:.1%}",
            f"{fold.majority:.1%}",
            f"{fold.previous:.1%}",
        )
    table.add_row(
        "all",
        "",
        f"{sum(f.test for f in evaluation.folds):,}",
        f"[bold]{evaluation.pooled('accuracy'):.1%}[/]",
        f"{evaluation.pooled('majority'):.1%}",
        f"{evaluation.pooled('previous'):.1%}",
    )
    console.print(table)
    console.print(
        f"{labelled.bars:,} closed bars; {len(labelled.labels):,} labelled ({labelled.flat:,} left out: the next bar "
        f"closed unchanged); out-of-sample accuracy is over the test bars only.",
        highlight=False,
    )
    console.print(f"model {out} (id {model_id}) in {seconds:.1f} s", highlight=False)
    console.print(f"trade it: tradecore backtest ... --param indicator=model --param model={out}", highlight=False)
