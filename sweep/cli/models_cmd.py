"""``sweep models …`` (the registry) and ``sweep export``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser(
        "models",
        help="the model registry: list, show, download, predict",
        description="Registered models live under ./models (or --registry / $SWEEP_MODELS) as "
        "NAME/VERSION/ with model.pt, model.onnx and card.json. Versions are never overwritten.",
    )
    verbs = models.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("list", help="every model name and its versions")
    _registry_flag(p)
    p.set_defaults(func=list_models)

    p = verbs.add_parser("show", help="a version's card: params, metrics, data, lineage")
    p.add_argument("ref", metavar="NAME[:VERSION]", help="latest version when none is given")
    p.add_argument("--json", action="store_true", help="print the whole card as JSON")
    _registry_flag(p)
    p.set_defaults(func=show)

    p = verbs.add_parser("download", help="copy a version's files into a folder")
    p.add_argument("ref", metavar="NAME[:VERSION]")
    p.add_argument("dest", type=Path, metavar="DIR", help="a new or empty folder")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a folder that already holds files (same names replaced)",
    )
    _registry_flag(p)
    p.set_defaults(func=download)

    p = verbs.add_parser("predict", help="classify image files with a model's ONNX file")
    p.add_argument("ref", metavar="NAME[:VERSION]", help="a registered model or a model folder")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    _registry_flag(p)
    p.set_defaults(func=predict)

    p = sub.add_parser(
        "register",
        help="register another completed trial's model (a Pareto front member)",
        description="Registers trial N's model (exported to ONNX, checked, with its card) as "
        "the next version of the sweep's register.model_name. The sweep registers its pick "
        "by itself; this is for another front member ('sweep best NAME' lists the front).",
    )
    p.add_argument("name", help="the sweep's name (see 'sweep ls')")
    p.add_argument("--trial", type=int, required=True, metavar="N", help="the trial to register")
    p.add_argument(
        "--infeasible",
        action="store_true",
        help="register it even though it breaks a constraint (its card says so)",
    )
    p.add_argument("--root", type=Path, help="the folder of sweeps (default ./sweeps)")
    p.set_defaults(func=register_trial)

    p = sub.add_parser(
        "export",
        help="export a finished sweep's best model to ONNX, checked against PyTorch",
    )
    p.add_argument("name", help="the sweep's name (see 'sweep ls')")
    p.add_argument("--onnx", type=Path, required=True, metavar="FILE", help="where to write it")
    p.add_argument("--root", type=Path, help="the folder of sweeps (default ./sweeps)")
    p.set_defaults(func=export)


def _registry_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--registry", type=Path, help="the registry folder (default ./models)")


def list_models(args: argparse.Namespace) -> int:
    from sweep.model.registry import ModelRegistry

    registry = ModelRegistry(args.registry)
    names = registry.names()
    if not names:
        print(f"no models in {registry.root}")
        return 0
    print(f"{'model':<28} {'versions':<12} {'latest: value':<16} from")
    for name in names:
        versions = registry.versions(name)
        card = versions[-1].card
        value = card.get("objective", {}).get("value")
        shown = f"{value:.4g}" if isinstance(value, int | float) else "-"
        print(
            f"{name:<28} {','.join(str(v.version) for v in versions):<12} {shown:<16} "
            f"sweep {card.get('sweep', '?')}, trial {card.get('trial', '?')}"
        )
    return 0


def show(args: argparse.Namespace) -> int:
    from sweep.model.registry import ModelRegistry

    mv = ModelRegistry(args.registry).get(args.ref)
    card = mv.card
    if args.json:
        print(json.dumps({"name": mv.name, "version": mv.version, **card}, indent=2))
        return 0
    objective = card.get("objective", {})
    print(f"{mv}  ({mv.path})")
    print(f"  from sweep {card.get('sweep')}, trial {card.get('trial')}, {card.get('created')}")
    print(f"  {objective.get('primary_metric')} = {objective.get('value')}")
    for k, v in card.get("params", {}).items():
        print(f"  {k}: {v}")
    if card.get("command"):
        print(f"  command: {card['command']}")
        print(f"  code: {(card.get('code') or {}).get('fingerprint', 'none')}")
    data = card.get("data")
    if data:
        print(
            f"  data: {data.get('source')} ({len(data.get('classes', []))} classes, "
            f"{data.get('fingerprint', '')[:19]}…)"
        )
    onnx = card.get("onnx") or {}
    if onnx.get("opset") is not None:
        print(f"  onnx: opset {onnx['opset']}, max abs diff vs PyTorch {onnx.get('max_abs_diff')}")
    else:
        print(f"  onnx: {onnx.get('checked') or onnx.get('why') or 'none'}")
    return 0


def download(args: argparse.Namespace) -> int:
    from sweep.model.registry import ModelRegistry

    dest = ModelRegistry(args.registry).download(args.ref, args.dest, force=args.force)
    print(f"{args.ref}: files in {dest}")
    return 0


def predict(args: argparse.Namespace) -> int:
    from sweep.model.predict import load_model

    predictions = load_model(args.ref, args.registry).predict(args.images)
    if args.json:
        print(
            json.dumps(
                [
                    {"image": str(p.path), "class": p.label, "probability": p.probability}
                    for p in predictions
                ],
                indent=2,
            )
        )
        return 0
    for p in predictions:
        print(f"{p.path}: {p.label} ({p.probability:.1%})")
    return 0


def register_trial(args: argparse.Namespace) -> int:
    from sweep.api import Sweep

    version = Sweep.load(args.name, root=args.root).register_trial(
        args.trial, infeasible=args.infeasible
    )
    print(f"registered trial {args.trial} of {args.name} as {version}")
    return 0


def export(args: argparse.Namespace) -> int:
    from sweep.api import Sweep
    from sweep.errors import SweepInputError
    from trainer.onnx_export import export_onnx

    result = Sweep.load(args.name, root=args.root).result()
    if result.best is None or result.best.model_path is None:
        raise SweepInputError(f"sweep {args.name} has no completed trial with a model")
    report = export_onnx(result.best.model_path.parent, args.onnx)
    print(
        f"{report.path}: trial {result.best.number}, opset {report.opset}, checked on "
        f"{report.images_checked} validation images, max abs diff {report.max_abs_diff:.3g}"
    )
    return 0
