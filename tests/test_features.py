import os

import librosa
import numpy as np
import pytest
import torch

from audioforge.errors import ConfigError
from datamodules.audio_io import fit_length, load_audio
from datamodules.features import FeatureSpec, extract, feature_shape
from datamodules.fsdd import FSDDDataModule


def test_mfcc_matches_librosa_on_real_clips(data_root):
    spec = FeatureSpec()
    names = ["0_george_0.wav", "7_jackson_32.wav", "9_yweweler_49.wav"]
    waves = [load_audio(data_root / "fsdd" / "recordings" / n, spec.sample_rate) for n in names]
    feats = extract(waves, spec)
    assert feats.shape == (3, 1, 20, 20) and feats.dtype == torch.float32
    for wave, feat in zip(waves, feats):
        ref = librosa.feature.mfcc(y=fit_length(wave, spec.num_samples), sr=spec.sample_rate, n_mfcc=spec.n_mfcc,
                                   n_fft=spec.n_fft, hop_length=spec.hop_length, n_mels=spec.n_mels)
        assert ref.shape == (20, 20)
        np.testing.assert_allclose(feat[0].numpy(), ref, atol=1e-3 * np.abs(ref).max())


def test_resampled_clips_are_librosas_soxr_hq_resampling(data_root):
    """Decoding resamples as ``librosa.resample(res_type="soxr_hq")`` does, once cut or padded."""
    import soundfile as sf

    paths = [data_root / "fsdd" / "recordings" / "0_george_0.wav",
             next((data_root / "ravdess").rglob("*.wav"), None), next((data_root / "urbansound8k").rglob("*.wav"), None)]
    paths = [p for p in paths if p is not None]
    for path in paths:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        for rate, length in ((8000, 6400), (16000, 56000), (22050, 30000)):
            if rate == sr:
                continue
            ref = librosa.resample(audio.mean(axis=1), orig_sr=sr, target_sr=rate, res_type="soxr_hq")
            for n in (length, len(ref)):
                np.testing.assert_array_equal(fit_length(load_audio(path, rate), n), fit_length(ref, n))


def test_a_wanted_length_reads_only_the_part_of_the_file_it_needs(data_root, tmp_path):
    """``load_audio(..., max_samples=n)`` gives the whole file's first n samples (within float
    rounding where it resamples) and reads no further than they need: a recording whose later
    part is NaN decodes when only its start is wanted, and fails when all of it is."""
    import soundfile as sf

    from audioforge.errors import DataError

    paths = [data_root / "fsdd" / "recordings" / "0_george_0.wav",
             next((data_root / "ravdess").rglob("*.wav"), None), next((data_root / "urbansound8k").rglob("*.wav"), None)]
    for path in [p for p in paths if p is not None]:
        for rate, n in ((8000, 6080), (8000, 2000), (16000, 56000), (22050, 30000)):
            whole = fit_length(load_audio(path, rate), n)
            part = load_audio(path, rate, n)
            np.testing.assert_allclose(fit_length(part, n), whole, atol=2e-6)
            if sf.info(str(path)).samplerate == rate:
                np.testing.assert_array_equal(fit_length(part, n), whole)
    rng = np.random.default_rng(0)
    for rate in (16000, 8000):
        wave = rng.normal(scale=0.1, size=3 * rate).astype(np.float32)
        wave[2 * rate:] = np.nan
        path = tmp_path / f"tail-{rate}.wav"
        sf.write(path, wave, rate, subtype="FLOAT")
        head = load_audio(path, 8000, 6080)
        assert np.isfinite(head).all() and len(head) < 2 * 8000
        with pytest.raises(DataError, match=f"NaN or infinite samples: {path}"):
            load_audio(path, 8000)


def test_pad_and_cut_to_twenty_frames():
    spec = FeatureSpec()
    short, long = np.random.default_rng(0).normal(size=(2, 20000)).astype(np.float32)
    feats = extract([short[:500], long], spec)
    assert feats.shape == (2, 1, 20, 20)
    assert torch.isfinite(feats).all()
    assert fit_length(long, spec.num_samples).shape == (spec.num_samples,)
    assert feature_shape(FeatureSpec(n_mfcc=13, frames=32)) == (1, 13, 32)


def test_feature_spec_validation():
    with pytest.raises(ConfigError, match="hop_length must be positive"):
        FeatureSpec(hop_length=0).validate()
    with pytest.raises(ConfigError, match="fmax"):
        FeatureSpec(fmax=6000.0).validate()


def test_cache_hit_and_invalidation(small_fsdd, tmp_path):
    cache = tmp_path / "cache"
    first = FSDDDataModule(small_fsdd, download=False, cache_dir=cache)
    first.setup()
    assert not first.last_load_cached
    second = FSDDDataModule(small_fsdd, download=False, cache_dir=cache)
    second.setup()
    assert second.last_load_cached
    torch.testing.assert_close(first.x, second.x)
    # other parameters: a different key
    third = FSDDDataModule(small_fsdd, download=False, cache_dir=cache, features=FeatureSpec(n_mfcc=13))
    third.setup()
    assert not third.last_load_cached and third.x.shape[2] == 13
    assert third.content_key != first.content_key
    # a copied dataset (new file times): features are extracted again, but what a network sees is
    # the same, so the content key (which names buffers, cached models, distilled sets) is too
    for wav in (small_fsdd / "fsdd" / "recordings").glob("*.wav"):
        os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
    copied = FSDDDataModule(small_fsdd, download=False, cache_dir=cache)
    copied.setup()
    assert not copied.last_load_cached and copied.content_key == first.content_key
    # a changed file list: a different key
    (small_fsdd / "fsdd" / "recordings" / "0_theo_9.wav").unlink()
    fourth = FSDDDataModule(small_fsdd, download=False, cache_dir=cache)
    fourth.setup()
    assert not fourth.last_load_cached and len(fourth.x) == len(first.x) - 1
    assert fourth.content_key != first.content_key


def test_corrupt_cache_file_is_rebuilt(small_fsdd, tmp_path):
    cache = tmp_path / "cache"
    dm = FSDDDataModule(small_fsdd, download=False, cache_dir=cache)
    dm.setup()
    for f in cache.rglob("*.pt"):
        f.write_bytes(b"garbage")
    again = FSDDDataModule(small_fsdd, download=False, cache_dir=cache)
    again.setup()
    assert not again.last_load_cached
    torch.testing.assert_close(dm.x, again.x)


def test_logmel_matches_librosa(data_root):
    spec = FeatureSpec(kind="logmel", sample_rate=8000, n_mels=40, frames=20)
    wave = fit_length(load_audio(data_root / "fsdd" / "recordings" / "3_theo_7.wav", 8000), spec.num_samples)
    feat = extract([wave], spec)
    assert feat.shape == (1, 1, 40, 20)
    mel = librosa.feature.melspectrogram(y=wave, sr=8000, n_fft=spec.n_fft, hop_length=spec.hop_length, n_mels=40)
    ref = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0)
    np.testing.assert_allclose(feat[0, 0].numpy(), ref, atol=1e-3 * np.abs(ref).max())


def test_fft_magnitude_matches_librosa_stft(data_root):
    spec = FeatureSpec(kind="fft", sample_rate=8000, n_fft=256, hop_length=128, frames=24)
    wave = fit_length(load_audio(data_root / "fsdd" / "recordings" / "5_jackson_3.wav", 8000), spec.num_samples)
    feat = extract([wave], spec)
    assert feat.shape == (1, 1, 129, 24)
    mag = np.abs(librosa.stft(wave, n_fft=256, hop_length=128, center=True, pad_mode="constant"))
    ref = librosa.amplitude_to_db(mag, ref=1.0, amin=1e-5, top_db=80.0)
    np.testing.assert_allclose(feat[0, 0].numpy(), ref, atol=1e-3 * np.abs(ref).max())


def test_fdmfcc_stacks_mfcc_and_the_papers_differences(data_root):
    spec = FeatureSpec(kind="fdmfcc")
    wave = fit_length(load_audio(data_root / "fsdd" / "recordings" / "7_george_11.wav", 8000), spec.num_samples)
    fd = extract([wave], spec)[0]
    plain = extract([wave], FeatureSpec(kind="mfcc"))[0, 0]
    assert fd.shape == (3, 20, 20)
    np.testing.assert_allclose(fd[0].numpy(), plain.numpy(), rtol=1e-6)
    d1 = (plain[:, 1:] - plain[:, :-1]) / 2  # DDFAD eq. 1
    np.testing.assert_allclose(fd[1, :, :-1].numpy(), d1.numpy(), atol=1e-5)
    np.testing.assert_allclose(fd[2, :, :-2].numpy(), ((d1[:, 1:] - d1[:, :-1]) / 2).numpy(), atol=1e-5)  # eq. 2
