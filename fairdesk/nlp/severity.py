"""Cues of how severe a complaint is: word lists written from the four level definitions of the training data
(1 no explicit reproach, 2 disapproval, 3 accusation, 4 blame), not mined from it. They are extra columns of the
severity model in nlp/components.py (5-fold CV on train.csv: severity macro F1 0.414 without them, 0.429 with)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def _words(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z])(?:" + "|".join(patterns) + r")(?![a-z])")


# Word lists written from the level definitions (1 no explicit reproach .. 4 blame), not mined from the data.
CUES = (
    # 3 accusation: the company did something wrong or dishonest
    _words(
        [
            r"li(?:e|ed|es|ar|ars|ying)",
            r"scam\w*",
            r"fraud\w*",
            r"st(?:ole|eal|ealing|olen)",
            r"thie(?:f|ves)",
            r"rip(?:ped)? ?off",
            r"robb\w*",
            r"cheat\w*",
            r"false",
            r"mislead\w*",
            r"overcharg\w*",
            r"(?:charged|billed|debited|taken) (?:me |my card )?(?:twice|double|two times|again)",
            # cut off from the service: an account or a line the customer cannot use, whatever the tone
            r"locked out",
            r"(?:no|without) (?:service|signal|internet|broadband|wifi|power|connection|phone line) (?:for|since)",
            r"double charg\w*",
            r"refus\w*",
            r"ignor\w*",
            r"lost my",
            r"broke",
            r"broken",
            r"cancel+ed my",
            r"didn'?t (?:even )?(?:bother|reply|respond|answer)",
            r"no (?:one|reply|response|answer)",
            r"nobody",
            r"won'?t (?:let|refund|reply|respond|answer|allow)",
            r"hung up",
            r"still (?:no|not|waiting|haven'?t)",
            r"never (?:arrived|received|got|came|replied)",
        ]
    ),
    # 4 blame: the company is held responsible or condemned
    _words(
        [
            r"your fault",
            r"because of (?:you|your)",
            r"thanks to (?:you|your|\@user)",
            r"ruin\w*",
            r"incompeten\w*",
            r"worst",
            r"pathetic",
            r"useless",
            r"disgrac\w*",
            r"disgust\w*",
            r"shame on",
            r"never again",
            r"a joke",
            r"ridiculous",
            r"hate",
            r"suck\w*",
            r"crap\w*",
            r"shit\w*",
            r"fuck\w*",
            r"wtf",
            r"idiot\w*",
            r"moron\w*",
            r"boycott\w*",
            r"fail\w*",
            r"#fail",
            r"clueless",
            r"stupid",
            r"you (?:guys )?(?:have|has|'ve)? ?(?:ruined|failed|screwed|messed|lost|broke|cost)",
            r"(?:blame|blaming)",
            r"responsib\w*",
            r"accountab\w*",
            r"compensat\w*",
            r"lawyer\w*",
            r"sue",
            r"(?:bbb|trading standards|ombudsman)",
        ]
    ),
    # 2 disapproval
    _words(
        [
            r"disappoint\w*",
            r"unacceptable",
            r"terrible",
            r"awful",
            r"horrible",
            r"poor\w*",
            r"bad",
            r"not (?:happy|good|impressed|great|ok|okay)",
            r"unhappy",
            r"frustrat\w*",
            r"annoy\w*",
            r"upset",
            r"sad",
            r"expected better",
            r"let down",
            r"shame",
            r"not cool",
            r"really\?+",
            r"seriously",
            r"ugh+",
            r"meh",
            r"come on",
            r"fed up",
            r"sick of",
            r"tired of",
        ]
    ),
    # 1 no reproach: a request, a question, a neutral report
    _words(
        [
            r"hi",
            r"hello",
            r"hey",
            r"please",
            r"pls",
            r"plz",
            r"can (?:you|i|someone)",
            r"could (?:you|i)",
            r"is there",
            r"do you",
            r"will you",
            r"are you",
            r"how (?:do|can) i",
            r"any (?:chance|idea|news|update)",
            r"help",
            r"thanks?",
            r"wondering",
            r"anyone know",
            r"question",
            r"possible",
        ]
    ),
)
# Praise and thanks, written from the level definitions: level 1 is "no explicit reproach", and a post that thanks
# or praises the company reproaches it for nothing unless it also accuses or blames (sarcasm: "thanks for nothing,
# worst service ever" keeps its blame cue).
PRAISE = _words(
    [
        r"thank you(?: so much| very much)?",
        r"(?:huge|big|massive|many) thanks",
        r"cheers",
        r"great (?:service|job|work|help)",
        r"brilliant",
        r"fantastic",
        r"amazing",
        r"excellent",
        r"painless",
        r"above and beyond",
        r"shout ?out",
        r"credit where",
        r"fair play",
        r"kudos",
        r"well done",
        r"love (?:it|the|your)",
        r"(?:so|really|very) helpful",
    ]
)
ACCUSATION, BLAME = CUES[0], CUES[1]
# The highest level a post that praises without accusing or blaming can get, while the complaint model is unsure
# it is a complaint at all (below PRAISE_SURE). A sure complaint in words of praise is sarcasm ("thanks @VW for your
# fantastic car seizing up while driving"; train.csv has a few, most of them severity 3-4) and keeps its level.
PRAISE_CAP = 2
PRAISE_SURE = 0.6
_SECOND = re.compile(r"(?<![a-z])(?:you|your|you're|youre|u|ur|you've|y'all)(?![a-z])")
# "you never / you didn't / you charged ..." — the company as the subject of a failure
_YOU_DID = re.compile(
    r"(?<![a-z])(?:you|u|you guys|they)(?: guys)? (?:have |'ve |had )?(?:never|not|didn'?t|don'?t|won'?t|can'?t|"
    r"haven'?t|couldn'?t|refuse\w*|failed|keep|lied|charged|cancel+ed|lost|sent|took|ignored|broke)"
)
N_SEV_CUES = 2 * len(CUES) + 4


def severity_cues(texts: Sequence[str]) -> np.ndarray:
    """(n, 12) cues per post; `texts` have handles replaced by @user (as nlp.components._Views.text)."""
    out = np.zeros((len(texts), N_SEV_CUES), dtype=np.float32)
    for i, text in enumerate(texts):
        low = text.lower()
        row = []
        for rx in CUES:
            n = len(rx.findall(low))
            row += [n > 0, min(n, 3) / 3]
        row += [
            _YOU_DID.search(low) is not None,
            min(len(_SECOND.findall(low)), 3) / 3,
            "#" in low and ("fail" in low or "worst" in low),
            text.count("!") >= 2,
        ]
        out[i] = row
    return out


def cap_praise(texts: Sequence[str], sev: np.ndarray, complaint: np.ndarray) -> np.ndarray:
    """Severity probabilities (n, 4) with levels above PRAISE_CAP emptied, and their mass moved to PRAISE_CAP, for
    posts that praise or thank, neither accuse nor blame, and whose complaint probability is below PRAISE_SURE: a
    level the agents trust for priority must not put a thank-you at the top of the queue (the severity model, trained
    on real complaints, sees too few of them)."""
    out = sev.copy()
    for i, text in enumerate(texts):
        low = text.lower()
        if complaint[i] < PRAISE_SURE and PRAISE.search(low) and not ACCUSATION.search(low) and not BLAME.search(low):
            out[i, PRAISE_CAP - 1] += out[i, PRAISE_CAP:].sum()
            out[i, PRAISE_CAP:] = 0.0
    return out
