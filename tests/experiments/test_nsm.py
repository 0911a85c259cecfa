"""Paper 002's experiments on small synthetic data (the real runs are `synsample reproduce`)."""

from synsample.experiments import nsm, registry


def test_reproduce_nsm_scale_invariance_on_synthetic_data(synthetic, tmp_path):
    out_dir = tmp_path / "scale"
    cfg = nsm.ScaleInvarianceConfig(dataset="synthetic", epochs=2, samples=4, out=out_dir,
                                    jobs=tmp_path / "jobs", data_path=str(synthetic),
                                    progress=False)
    result = registry.run("nsm-scale-invariance", cfg, log=lambda m: None)
    rows = result["rows"]
    # the bias-free NSM is exactly invariant; a ReLU network is not
    assert rows["nsm-nobias"]["weights"]["error"] == rows["nsm-nobias"]["x1"]["error"]
    assert rows["nsm"]["weights+biases"]["error"] == rows["nsm"]["x1"]["error"]
    assert rows["relu"]["weights"]["error"] > rows["relu"]["x1"]["error"] + 0.2
    assert (out_dir / "report.md").is_file() and (out_dir / "metrics.json").is_file()
