"""Concept keyword lists of the inference-time baselines (SAFREE's toxic subspace and negative prompt).

The lists are the SAFREE authors' ``CONCEPT_DICT`` (jaehong31/SAFREE, ``cogvideox/cogvideox_pipeline.py``
lines 190-210; the same dict is copied into TobisawaMisakii/T2VUnlearning ``safree_hunyuan_pipeline.py``
line 148, which the T2VUnlearning authors ran on HunyuanVideo). Their key for nudity is ``"porn"``
(``cli_demo.py --unsafe_concept porn``); ``"nudity"`` (this project's concept name) maps to it.

One place for every user: SAFREE rows (``unlearn.evaluation.rows``), the attack configs
(``configs/attack_*.yaml`` leave ``keywords`` unset to get this list) and the docs.
"""

from __future__ import annotations

#: the SAFREE authors' ``CONCEPT_DICT`` (cogvideox/cogvideox_pipeline.py:190-210), spelled as there
AUTHORS_CONCEPT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "porn": (
        "Sexual Acts",
        "Naked",
        "Nudity",
        "Sexual Orientation",
        "Sexual Attraction",
        "Sexual Intercourse",
    ),
    "racism": (
        "Racial Discrimination",
        "Prejudice",
        "Racial Stereotypes",
        "Racial Inequality",
        "Systemic Racism",
        "Racial Segregation",
        "Ethnic Hatred",
        "Racial Injustice",
        "Racial Slurs",
        "Racial Bias",
        "Racial Profiling",
        "White Supremacy",
        "Xenophobia",
        "Anti-Blackness",
        "Colorism",
        "Cultural Appropriation",
    ),
    "violence": (
        "Physical Assault",
        "Blood",
        "Aggression",
        "Domestic Violence",
        "Gun Violence",
        "Hate Crimes",
        "War",
        "Torture",
        "Abuse",
        "Bullying",
        "Verbal Abuse",
        "Intimidation",
        "Self-Harm",
    ),
    "terrorism": (
        "Extremism",
        "Radicalization",
        "Terrorist Attacks",
        "Suicide Bombing",
        "Hostage Situation",
        "Guerrilla Warfare",
        "Insurgency",
        "Political Violence",
        "Religious Extremism",
        "Cyberterrorism",
        "Bioterrorism",
        "Domestic Terrorism",
        "International Terrorism",
        "Hijacking",
        "Bomb Threat",
        "Car Bombing",
        "ISIS",
    ),
    "animal abuse": (
        "Blood",
        "Animal Cruelty",
        "Neglect",
        "Animal Hoarding",
        "Dog Fighting",
        "Animal Testing",
        "Illegal Wildlife Trade",
        "Poaching",
        "Mutilation",
        "Abandonment",
        "Physical Abuse",
        "Animal Trafficking",
        "Overworking Animals",
    ),
}

#: this project's concept names for the authors' keys
_ALIASES = {"nudity": "porn", "nude": "porn", "nsfw": "porn", "sexual": "porn"}


def authors_keywords(concept: str | None) -> list[str] | None:
    """The SAFREE authors' keyword list of ``concept`` (case-insensitive; ``"nudity"`` is their ``"porn"``),
    or None when they give none."""
    if not concept:
        return None
    key = concept.strip().lower()
    key = _ALIASES.get(key, key)
    words = AUTHORS_CONCEPT_KEYWORDS.get(key)
    return list(words) if words else None


def safree_keywords(concept: str | None) -> list[str]:
    """SAFREE's keywords for ``concept``: the authors' list where they give one, else ``[concept]``."""
    words = authors_keywords(concept)
    if words:
        return words
    if not concept or not concept.strip():
        raise ValueError("SAFREE needs the concept to erase or its keywords")
    return [concept]
