"""Noisy clients (FedAudio's challenge): additive noise at the asked SNR, label noise at the asked rate."""
import json

import numpy as np
import pytest

from tff_ser.corpus.noise import (NOISE_RECORD, babble_noise, make_noisy_corpus, measured_snr,
                                  mix_at_snr, pink_noise, white_noise)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
def test_noise_is_mixed_at_the_asked_snr_measured_on_the_mixed_signal(kind, snr):
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    clean = 0.3 * np.sin(2 * np.pi * 200 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    noise = {"white": lambda: white_noise(len(clean), rng),
             "pink": lambda: pink_noise(len(clean), rng),
             "babble": lambda: babble_noise(len(clean), [rng.normal(size=7000),
                                                         rng.normal(size=12000)], rng)}[kind]()
    assert measured_snr(clean, mix_at_snr(clean, noise, snr)) == pytest.approx(snr, abs=1e-9)


def test_pink_noise_has_more_power_at_low_frequencies():
    spectrum = np.abs(np.fft.rfft(pink_noise(2 ** 16, np.random.default_rng(0)))) ** 2
    low, high = spectrum[10:100].mean(), spectrum[10000:20000].mean()
    assert low > 50 * high


def test_a_noisy_corpus_copy_has_noise_on_the_chosen_speakers_only(small_corpus_dir, tmp_path):
    from tff_ser.corpus import load_corpus
    from tff_ser.corpus.audio import load_audio
    clips = load_corpus(small_corpus_dir).clips
    noisy_speaker = clips[0].speaker
    record = make_noisy_corpus(small_corpus_dir, str(tmp_path / "noisy"), speakers=[noisy_speaker],
                               snr_db=5.0, kind="babble", seed=3)
    assert json.loads((tmp_path / "noisy" / NOISE_RECORD).read_text())["snr_db"] == 5.0
    again = load_corpus(str(tmp_path / "noisy")).clips
    assert [c.speaker for c in again] == [c.speaker for c in clips]
    for clip, copy in zip(clips, again):
        a, b = load_audio(clip.path), load_audio(copy.path)
        if clip.speaker == noisy_speaker:
            assert measured_snr(a, b) == pytest.approx(5.0, abs=0.05)  # after 16-bit reading
        else:
            np.testing.assert_array_equal(a, b)
    assert set(record["measured_snr_db"]) == {c.path.split("/")[-1] for c in clips
                                              if c.speaker == noisy_speaker}
    with pytest.raises(FileExistsError):
        make_noisy_corpus(small_corpus_dir, str(tmp_path / "noisy"), speakers=[noisy_speaker],
                          snr_db=5.0)


def test_label_noise_flips_the_asked_share_of_the_chosen_clients_labels_only():
    from helpers import synthetic_task
    from tff_ser.task import with_label_noise
    task = synthetic_task()
    noisy = with_label_noise(task, 0.3, clients=["s00", "s02"], seed=4)
    for cid, idx in task.train_clients.items():
        changed = int(np.sum(noisy.y[idx] != task.y[idx]))
        assert changed == (round(0.3 * len(idx)) if cid in ("s00", "s02") else 0)
    np.testing.assert_array_equal(noisy.y[task.val_indices], task.y[task.val_indices])
    assert noisy.info["label_noise"]["flipped"] == sum(
        round(0.3 * len(task.train_clients[c])) for c in ("s00", "s02"))
    again = with_label_noise(task, 0.3, clients=["s00", "s02"], seed=4)
    np.testing.assert_array_equal(again.y, noisy.y)
    with pytest.raises(ValueError, match="never made noisy"):
        with_label_noise(task, 0.3, clients=["s07"])
