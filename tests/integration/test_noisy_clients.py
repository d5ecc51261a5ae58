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


def test_the_noisy_command_makes_only_training_speakers_noisy(small_corpus_dir, tmp_path,
                                                              capsys):
    from tff_ser import cli
    from tff_ser.corpus import load_corpus
    from tff_ser.partition import split_speakers
    out = tmp_path / "white10"
    assert cli.main(["data", "noisy", small_corpus_dir, str(out), "--kind", "white",
                     "--snr", "10", "--fraction", "0.5"]) == 0
    record = json.loads((out / NOISE_RECORD).read_text())
    train, held_out = split_speakers(load_corpus(small_corpus_dir).clips, seed=0)
    assert set(record["speakers"]) <= set(train) and not set(record["speakers"]) & set(held_out)
    assert len(record["speakers"]) == round(0.5 * len(train))
    assert all(abs(v - 10.0) < 1e-6 for v in record["measured_snr_db"].values())
    assert "paper000_personalization --data-dir" in capsys.readouterr().out


def test_a_noisy_copy_is_named_and_fingerprinted_apart_from_its_clean_corpus(small_corpus_dir,
                                                                            tmp_path):
    from tff_ser.corpus import load_corpus
    from tff_ser.corpus.summary import corpus_fingerprint, describe_corpus
    clean = load_corpus(small_corpus_dir)
    make_noisy_corpus(small_corpus_dir, str(tmp_path / "noisy"), speakers=[clean.clips[0].speaker],
                      snr_db=0.0, kind="pink")
    noisy = load_corpus(str(tmp_path / "noisy"))
    # same clip ids: without the noise in the fingerprint, clean runs would be read back
    assert [c.clip_id for c in noisy.clips] == [c.clip_id for c in clean.clips]
    assert corpus_fingerprint(noisy, noisy.clips) != corpus_fingerprint(clean, clean.clips)
    assert corpus_fingerprint(noisy, noisy.clips)["noise"]["kind"] == "pink"
    assert "noisy copy: pink noise at 0 dB" in describe_corpus(noisy, noisy.clips)
    assert "noisy copy" not in describe_corpus(clean, clean.clips)
