"""A light, local "is this English?" check from writing script and function words (no model, no data files)."""

from __future__ import annotations

import re
import unicodedata

# Share of letters outside the Latin script above which a post is not English.
_FOREIGN_SCRIPT_SHARE = 0.5
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

_ENGLISH = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before being below between
    both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few for from
    further had hadn't has hasn't have haven't having he her here hers herself him himself his how i i'm i've if in
    into is isn't it it's its itself just let's me more most my myself no nor not now of off on once only or other our
    ours out over own same she should shouldn't so some such than that that's the their theirs them then there these
    they this those through to too under until up very was wasn't we were weren't what when where which while who why
    will with won't would wouldn't you you're your yours yourself yet still again please thanks thank get got why
    hi hey hello yes ok okay my order help need want know like good bad new day time today
    """.split()
)

# Frequent function words of the Latin-script languages we most often see, minus anything that is also English.
_FOREIGN = (
    frozenset(
        """
    el la los las del al lo un una y nadie ha unos unas o pero porque que qué muy más mas este esta esto estos
    estas ese esa
    eso yo tu tú usted ustedes nosotros ellos ellas mi mis su sus nuestro es está estan están son ser estar hay tengo
    tiene tienen como cómo cuando dónde donde por para sin sobre entre hasta desde también tambien gracias hola nada
    todo todos bien pero ya aún aun sí hacer hace puedo pueden quiero favor buenos buenas días dias
    le les des du au aux et ou mais donc car je tu il elle nous vous ils elles mon ma mes ton ta tes son sa ses notre
    votre leur leurs ce cet cette ces qui quoi dans avec sans chez pour pas ne plus très tres bien merci bonjour
    oui non est sont être etre avoir ai avez ont fait faire c'est j'ai n'est je suis
    der die das den dem des ein eine einen einem einer und oder aber nicht ist sind war waren bin bist ich du er sie
    wir ihr mein meine dein deine sein seine unser euer mit für fur von zu zum zur auf aus bei nach über uber unter
    dich mich dir mir sich uns euch wie warum wann wo auch noch schon nur sehr danke bitte hallo kein keine ja nein
    heute jetzt
    o os as um uma uns umas e ou mas porque não nao sim muito mais meu minha meus minhas seu sua você voce vocês
    nós eles elas com sem para pelo pela pelos pelas isso isto esse essa aqui ali obrigado obrigada olá ola está
    estou são tem têm foi ainda já
    il lo gli della dello delle degli nel nella con per tra fra che chi non è sono ho hai abbiamo avete hanno
    molto anche ancora perché perche questo questa quello quella grazie ciao buongiorno
    het een en van voor niet ik jij je hij zij wij jullie mijn jouw zijn haar ons onze met naar bij ook maar dat deze
    dit wat hoe waarom wanneer nog geen heel dank bedankt hallo alsjeblieft
    yang dan di ke dari ini itu dengan untuk tidak ada saya aku kamu anda kami kita mereka sudah belum akan bisa
    juga atau tapi karena terima kasih
    bir ve ile için bu şu çok ama değil var yok ben sen biz siz onlar teşekkür merhaba
    och att det som är jag du han hon vi ni inte med för på av till från hej tack
    """.split()
    )
    - _ENGLISH
)


# Words as common in Spanish, Italian or Portuguese as in English: evidence for neither.
_SHARED = frozenset({"no", "me", "a", "i", "son", "come", "die", "will", "also", "man", "was", "has", "as"})
_ENGLISH_ONLY = _ENGLISH - _SHARED
_FOREIGN_ONLY = _FOREIGN - _SHARED


def _is_latin(ch: str) -> bool:
    if ch.isascii():
        return True
    try:
        return unicodedata.name(ch).startswith("LATIN")
    except ValueError:
        return False


def looks_non_english(text: str) -> bool:
    """True when `text` is clearly not English; short or ambiguous text counts as English so the model judges it."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return False
    non_latin = sum(1 for ch in letters if not _is_latin(ch))
    if len(letters) >= 3 and non_latin / len(letters) > _FOREIGN_SCRIPT_SHARE:
        return True
    words = [w.lower() for w in _WORD_RE.findall(text)]
    english = sum(1 for w in words if w in _ENGLISH_ONLY)
    foreign = sum(1 for w in words if w in _FOREIGN_ONLY)
    # Accented Latin letters (é, ñ, ü, ã) are rare in English tweets and common in the languages above.
    foreign += sum(1 for w in words if w not in _FOREIGN_ONLY and not w.isascii())
    if english == 0:
        return foreign >= min(2, len(words))
    return foreign >= 2 and foreign > 2 * english
