"""The claims of Zhang, Zhou & Xu 2024, Fig. 1 and Definition 2's Remark (``zzx-flat-minima*``), registered
before any run: their quotes, criteria, regimes and the substitute data of the CNN and transformer rows."""

from __future__ import annotations

from droplab.experiments.claims import ClaimSpec, Criterion

PAPER_ACC = {"1a": "98.7% vs 98.1% (MNIST)", "1b": "60.6% vs 59.2% (CIFAR-10, 2,048 images)",
             "1c": "54.7% vs 34.1% (CIFAR-100)", "1d": "49.33% vs 34.73% (Multi30k, 2,048 pairs)"}


def flat_claims(fig: str, model: str, gated: bool, substitute: str = "",
                granularity: str = "filter") -> tuple[ClaimSpec, ClaimSpec]:
    """Fig. 1's two statements for one net: a flatter minimum, and better generalization (paired over seeds)."""
    quote = ("For all network structures shown in Fig. 1, dropout can improve the generalization of the network "
             "and find a flatter minimum.")
    regime = ("both nets reach evaluation-mode training loss ≤ near_zero (Fig. 1(a, b): 'the training loss values "
              "are all closed to zero')" if gated else
              "the plain net overfits its small training set: training accuracy at least min_gap above its test "
              "accuracy (Fig. 1(c, d): the nets do 'not achieve very small training error' but dropout gives "
              "'much better generalization', 54.7% vs 34.1% and 49.3% vs 34.7%)")
    norm = ("layer-normalized (§5: 'for FNN, each layer can be regarded as a filter')" if granularity == "layer"
            else "filter-normalized (§5: 'each filter is normalized individually')")
    flatter = ClaimSpec(
        id=f"zzx-fig{fig}-flatter", kind="claim", where=f"Fig. 1({fig[-1]}), §5",
        statement=f"Training the {model} with dropout finds a flatter minimum than training without.",
        quote=quote, paper_value="flatter with dropout (Fig. 1 profiles)",
        criterion=Criterion(
            quantity=f"paired difference (dropout − plain) of the median width of {{α : L(θ* + α d) ≤ level}} over "
                     f"{norm} random directions d",
            op=">", threshold=0.0,
            reading="'flatter' read as a wider sublevel set at a common absolute loss level: the two minima have "
                    "different depths, so Definition 2's relative factor would favour the shallower one."),
        regime=regime, substitute=substitute)
    better = ClaimSpec(
        id=f"zzx-fig{fig}-generalizes", kind="claim", where=f"Fig. 1({fig[-1]}), §5",
        statement=f"The {model} trained with dropout generalizes better than without.",
        quote=quote, paper_value=f"test accuracy with vs without dropout: {PAPER_ACC[fig]}",
        criterion=Criterion(quantity="paired difference (dropout − plain) of test accuracy", op=">", threshold=0.0,
                            reading="'improve the generalization' read as a higher test accuracy at the end of "
                                    "training, same seed and initialization for both nets."),
        regime=regime, substitute=substitute)
    return flatter, better


MNIST_5K = "mnist-5k (4,000 real MNIST training images, offline) for the full MNIST training set"
FACTOR = ClaimSpec(
    id="zzx-fig1a-factor-robust", kind="claim", where="Definition 2 (Remark), Fig. 1(a)",
    statement="The flatness comparison of the FNN minima does not depend on Definition 2's pre-factor 2.",
    quote="The experiments show that the result is not sensitive to the selection of the pre-factor 2.",
    paper_value="same comparison for any reasonable pre-factor",
    criterion=Criterion(
        quantity="the smallest over pre-factors c ∈ factors (1.5, 2, 3) of the paired difference (dropout − plain) "
                 "of the median interval flatness F_v (loss ≤ c·L(θ*)) over layer-normalized directions",
        op=">", threshold=0.0,
        reading="'not sensitive' read as: the dropout minimum is flatter by Definition 2 at every pre-factor "
                "(the sign of the comparison holds at 1.5, 2 and 3); the widths at each factor are reported."),
    regime="both nets reach evaluation-mode training loss ≤ near_zero (as Fig. 1(a))", substitute=MNIST_5K)


_IMAGES = "mnist-5k (real MNIST digits, 1×28×28) for CIFAR"
FIG1A = (*flat_claims("1a", "FNN", gated=True, granularity="layer", substitute=MNIST_5K), FACTOR)
FIG1B = flat_claims("1b", "VGG-9", gated=True, substitute=f"{_IMAGES}-10 (512 images, as the paper's first 2,048)")
FIG1C = flat_claims("1c", "ResNet-20", gated=False, substitute=f"{_IMAGES}-100 (512 images: a data-starved net)")
FIG1D = flat_claims("1d", "transformer", gated=False,
                    substitute="reversal (generated translation task, 128 training pairs) for Multi30k")
