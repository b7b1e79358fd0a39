"""Language detection: the detector on its own, and gather storing what it detects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.gather.langdetect import LanguageDetector
from newsletter.gather.run import gather
from newsletter.render.i18n import catalog_locales
from newsletter.store import Store

#: every locale with a catalog
LOCALES = catalog_locales()

# made-up news sentences, written for these tests
SAMPLES: dict[str, list[str]] = {
    "bg": [
        "Общината ще постави слънчеви панели на покривите на три училища до края на "
        "следващата година.",
        "Членовете на клъстера обсъдиха как малките фирми могат да се включат в енергийни "
        "общности. Според организаторите интересът е по-голям, отколкото очакваха.",
    ],
    "en": [
        "The municipality will install solar panels on the roofs of three schools by the "
        "end of next year.",
        "Cluster members discussed how small firms can join energy communities. The "
        "organisers said interest was higher than they had expected.",
    ],
    "de": [
        "Die Gemeinde wird bis Ende nächsten Jahres Solaranlagen auf den Dächern von drei "
        "Schulen installieren.",
        "Die Mitglieder des Clusters sprachen darüber, wie kleine Betriebe sich an "
        "Energiegemeinschaften beteiligen können.",
    ],
    "ro": [
        "Primăria va instala panouri solare pe acoperișurile a trei școli până la sfârșitul "
        "anului viitor.",
        "Membrii clusterului au discutat cum pot firmele mici să se alăture comunităților "
        "energetice.",
    ],
    "ru": [
        "Муниципалитет установит солнечные панели на крышах трёх школ до конца следующего года.",
        "Участники кластера обсудили, как небольшие компании могут присоединиться к "
        "энергетическим сообществам. Интерес оказался выше ожидаемого.",
    ],
    "el": [
        "Ο δήμος θα τοποθετήσει φωτοβολταϊκά πάνελ στις στέγες τριών σχολείων μέχρι το "
        "τέλος του επόμενου έτους.",
        "Τα μέλη του συνεργατικού σχηματισμού συζήτησαν πώς οι μικρές επιχειρήσεις μπορούν "
        "να συμμετάσχουν σε ενεργειακές κοινότητες.",
    ],
    "tr": [
        "Belediye, gelecek yılın sonuna kadar üç okulun çatısına güneş panelleri kuracak.",
        "Küme üyeleri, küçük işletmelerin enerji topluluklarına nasıl katılabileceğini tartıştı.",
    ],
}

# one story in the three Cyrillic languages the model could confuse
STORY = {
    "bg": "Енергийният клъстер в Добрич организира семинар за термопомпи в обществени "
    "сгради. Инженери от две общини ще разкажат какви икономии са постигнали през "
    "изминалата зима и какви грешки трябва да се избягват при избора на оборудване.",
    "ru": "Энергетический кластер в Добриче организует семинар о тепловых насосах в "
    "общественных зданиях. Инженеры из двух муниципалитетов расскажут, какой экономии "
    "они добились прошлой зимой и каких ошибок следует избегать при выборе оборудования.",
    "uk": "Енергетичний кластер у Добричі організовує семінар про теплові насоси в "
    "громадських будівлях. Інженери з двох громад розкажуть, якої економії вони досягли "
    "минулої зими і яких помилок варто уникати під час вибору обладнання.",
}

#: two words that Bulgarian, Russian and Ukrainian could all nearly spell
TWO_WORDS = "Енергийна ефективност"


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(LOCALES)


@pytest.mark.parametrize(
    ("lang", "text"), [(lang, text) for lang, texts in SAMPLES.items() for text in texts]
)
def test_paragraphs_are_detected(detector: LanguageDetector, lang: str, text: str) -> None:
    found = detector.detect(text)
    assert found is not None
    assert found[0] == lang
    assert found[1] >= 0.8


@pytest.mark.parametrize("lang", sorted(STORY))
def test_bulgarian_russian_ukrainian_told_apart(detector: LanguageDetector, lang: str) -> None:
    found = detector.detect(STORY[lang])
    assert found is not None and found[0] == lang and found[1] >= 0.95


def test_two_words_give_low_confidence(detector: LanguageDetector) -> None:
    found = detector.detect(TWO_WORDS)
    assert found is not None and found[1] < 0.8


def test_html_is_stripped_before_detecting(detector: LanguageDetector) -> None:
    # English-looking markup must not pull a Bulgarian text towards English
    html = (
        '<div class="news-article english-version"><h2 title="Read the whole story here">'
        f"Семинар</h2><p data-note='energy cluster news'>{STORY['bg']}</p></div>"
    )
    assert detector.detect(html) == detector.detect(f"Семинар {STORY['bg']}")


@pytest.mark.parametrize("text", ["", "   ", "<p></p>", "ab", "12 345 !!"])
def test_nothing_to_judge_gives_none(detector: LanguageDetector, text: str) -> None:
    assert detector.detect(text) is None


def test_locales_map_to_languages_and_unknown_ones_are_ignored() -> None:
    detector = LanguageDetector(["pt_BR", "en-GB", "xx", "en"])
    assert detector.languages == ("pt", "en")
    assert LanguageDetector(["xx"]).detect(SAMPLES["en"][0]) is None


def test_restriction_keeps_answers_inside_the_configured_languages() -> None:
    # a Ukrainian text among bg and ru only: the answer can only be one of those two
    found = LanguageDetector(["bg", "ru"]).detect(STORY["uk"])
    assert found is not None and found[0] in {"bg", "ru"}


# -- gather -----------------------------------------------------------------------------


def _write_news(folder: Path) -> None:
    folder.mkdir()
    dated = "---\ndate: 2026-11-20\n---\n"
    (folder / "heat-pumps.md").write_text(f"{dated}# Семинар за термопомпи\n\n{STORY['bg']}\n")
    (folder / "solar-de.md").write_text(f"{dated}# Solardächer\n\n{' '.join(SAMPLES['de'])}\n")
    (folder / "community-ru.md").write_text(f"{dated}# Семинар\n\n{STORY['ru']}\n")
    # declared Romanian although written in English: the declaration wins
    (folder / "notice.ro.md").write_text(f"{dated}# Notice\n\n{' '.join(SAMPLES['en'])}\n")
    # too short to be sure: the source's configured language is used
    (folder / "short.md").write_text(f"{dated}# {TWO_WORDS}\n")


def _settings(make_config: Callable[..., Settings], folder: Path, detect: bool) -> Settings:
    return make_config(
        locales={"default": "bg", "available": LOCALES, "detect": detect},
        sources=[{"kind": "folder", "name": "news", "path": str(folder), "lang": "en"}],
    )


def test_gather_stores_detected_languages(
    make_config: Callable[..., Settings], store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "news"
    _write_news(folder)
    report = gather(_settings(make_config, folder, detect=True), store)
    assert report.ok and report.new == 5
    langs = {item.guid: item.lang for item in store.items.list()}
    assert langs == {
        "heat-pumps.md": "bg",
        "solar-de.md": "de",
        "community-ru.md": "ru",
        "notice.ro.md": "ro",
        "short.md": "en",
    }


def test_gather_without_detection_uses_the_source_language(
    make_config: Callable[..., Settings], store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "news"
    _write_news(folder)
    gather(_settings(make_config, folder, detect=False), store)
    langs = {item.guid: item.lang for item in store.items.list()}
    assert langs == {
        "heat-pumps.md": "en",
        "solar-de.md": "en",
        "community-ru.md": "en",
        "notice.ro.md": "ro",
        "short.md": "en",
    }
