"""The generated corpus's speech synthesiser, by role (:func:`tff_ser.corpus.generate.generate_corpus`
writes the corpus with it).

* :mod:`.plan` -- which clips exist, and one random stream per (seed, actor, sentence, emotion, level);
* :mod:`.phonetics` -- CREMA-D's sentences as phones, and their timed segments;
* :mod:`.speaker` -- a speaker's voice, rate, channel and acting skill;
* :mod:`.emotion` -- the emotion cues and one clip's prosody and voice;
* :mod:`.dsp` -- control tracks, the glottal source, the formant filter, the recording.
"""
