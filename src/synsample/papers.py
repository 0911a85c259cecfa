"""The numbers the four papers publish, in one place: read by the experiments that reproduce
them and by the reports that print them beside ours (``../shared/papers``; each constant names
its table or section).
"""

from __future__ import annotations

# Paper 000, scANN -----------------------------------------------------------------------------
#: Table I: accuracy (%) of the deterministic network and of scANN at full / 8- / 4-bit coins
SCANN_TABLE1 = {
    ("mnist", "mlp"): {"deterministic": 97.7, "full": 94.4, "8": 94.3, "4": 93.7},
    ("mnist", "conv"): {"deterministic": 98.8, "full": 98.7, "8": 98.7, "4": 98.6},
    ("fashion-mnist", "mlp"): {"deterministic": 87.9, "full": 65.3, "8": 64.2, "4": 69.3},
    ("fashion-mnist", "conv"): {"deterministic": 90.5, "full": 90.5, "8": 90.3, "4": 89.2},
}
#: section III: epochs of training
SCANN_EPOCHS = 100

# Paper 002, Neural Sampling Machines ---------------------------------------------------------
#: Table 1: PI-MNIST test error (%)
NSM_PI_MNIST = {"nsm": 1.36, "stnn": 1.47, "nsm-scaled": 1.38}
#: Table 2: MNIST conv-net test error (%)
NSM_MNIST_CONV = {"dcnn": 0.880, "bnsm": 0.775, "gnsm": 0.805}
#: epochs the paper trains each experiment (Table 2; 400 in the released PI-MNIST script)
NSM_EPOCHS = {"nsm-pi-mnist": "200-400", "nsm-mnist-conv": "200",
              "nsm-scale-invariance": "200-400"}

# Paper 003, quantized stochastic computing ---------------------------------------------------
#: section IV: accuracy (%) of Method 2 inferred with SC, by (network, states, stream length)
SC_BEST = {("sc-mlp", 5, 400): 93.68, ("sc-mlp", 11, 500): 94.48,
           ("sc-mlp3", 5, 300): 96.62, ("sc-mlp3", 11, 400): 96.82}
#: sections IV and V: "at 100 bits accuracy of 92% to over 96%", lower bounds by network
SC_AT_100 = {"sc-mlp": 92.0, "sc-mlp3": 96.0}
#: the energy comparison: (network, L) -> nJ of bitstream generation per inference
SC_ENERGY = {("sc-mlp", 1024): "~2100", ("sc-mlp3", 100): "810-820"}

# Paper 004, SpinBayes ------------------------------------------------------------------------
#: Table 1, MNIST, LeNet-5: error, R_iu, R_cc, UA (%)
SPINBAYES_TABLE1 = {"mc-dropout": (0.77, 31.24, 98.77, 97.48),
                    "mc-dropconnect": (0.57, 41.67, 99.57, 98.87),
                    "bbb": (0.75, 94.94, 99.95, 91.99), "spinbayes": (0.77, 96.81, 99.96, 85.10)}
#: Table 3, MNIST, LeNet-5 (SpinBayes): detection rate (%) by our OoD set's name (the paper's
#: FakeData is torchvision's, i.i.d. pixels: our ``fakedata``, not the smoothed ``fake``)
SPINBAYES_TABLE3 = {"gaussian-noise": 100.0, "noisy": 99.21, "fakedata": 100.0, "other": 100.0}
#: Table 5: energy per MNIST image (uJ) and random number generators of the compared designs
SPINBAYES_TABLE5 = {"H. Awano et al. [4], FPGA": (21.09, "-"),
                    "A. Malhotra [18], RRAM": (9.30, "64"),
                    "K. Yang et al. [27], domain-wall MTJ": (0.79, "array (2 x 2)"),
                    "SpinBayes (paper), SOT-MRAM": (0.26, "3")}
#: Table 3's OoD sets that cannot be fetched from these machines
SPINBAYES_NOT_REACHABLE = ("SVHN", "STL10")
