"""Rebuild the project's own prompt files in this folder (written by the t2v-unlearn project, CC0-1.0).

    python unlearn/prompts/builtin/build_project_prompts.py          # rewrites the .jsonl files next to this script
    python unlearn/prompts/builtin/build_project_prompts.py --check  # exits 1 if a file would change

Files:
- ``imagenet10_video.jsonl``: the 10 classes of the ESD object protocol x 20 video prompts, each with a seed.
- ``faces_templates.jsonl``: 30 face-centred video prompt templates with an ``{identity}`` placeholder.
- ``faces_5ids.jsonl``: the templates filled with the five public figures of the paper's face table.

Seeds are drawn once from ``random.Random(<fixed string>)`` so rebuilding gives the same files.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from unlearn.prompts import (  # noqa: E402
    FACES_IDENTITIES,
    IMAGENET10_CLASSES,
    PromptRecord,
    PromptSuite,
    expand_identity_templates,
    find_concept_words,
)

IMAGENET10_PROMPTS: dict[str, list[str]] = {
    "cassette player": [
        "A cassette player on a wooden desk, its reels turning slowly as music plays, warm afternoon light",
        "Close-up of hands pressing play on a silver cassette player, the tape starts to spin",
        "A vintage cassette player sits on a windowsill while rain streaks down the glass behind it",
        "A teenager in the 1980s carries a portable cassette player down a sunny suburban street",
        "Slow dolly shot across a cluttered shelf that ends on a black cassette player with glowing buttons",
        "A cassette player ejects a tape with a soft click, macro shot, shallow depth of field",
        "A red cassette player rests on a picnic blanket in a park as leaves drift past",
        "Time-lapse of a cassette player on a bedside table as morning light sweeps across the room",
        "A dusty cassette player in an attic, a beam of sunlight reveals floating dust particles",
        "A cassette player in a car dashboard, the road blurred through the windshield at dusk",
        "Overhead shot of a cassette player surrounded by scattered tapes on a shag carpet",
        "A cassette player spins on a turntable display in a second-hand electronics shop",
        "Someone rewinds a tape in a cassette player with a pencil, then snaps it back in, close-up",
        "A cassette player on a kitchen counter plays while steam rises from a kettle nearby",
        "Neon-lit retro bedroom, a cassette player's VU meters bounce to the beat",
        "A cassette player sits on a park bench in the snow, flakes slowly settling on its lid",
        "Tracking shot of a cassette player on a moving train table, countryside sliding by",
        "A cassette player on a workbench with its casing open, a technician adjusts a tiny screw",
        "A glossy cassette player rotates on a white studio backdrop, product commercial style",
        "A child presses record on a cassette player and speaks into its built-in microphone",
    ],
    "chain saw": [
        "A lumberjack starts a chain saw in a pine forest, sawdust spraying into the cold air",
        "Slow motion close-up of a chain saw cutting through a log, wood chips flying",
        "A chain saw rests on a tree stump in a misty clearing at dawn",
        "An orange chain saw hangs on a pegboard in a tidy garage, camera slowly pushes in",
        "A worker in safety gear trims branches with a chain saw from a bucket lift",
        "A chain saw carves an ice sculpture at a winter festival, shards glittering under lights",
        "Wide shot of a chain saw felling a tall tree, the trunk slowly tipping over",
        "A chain saw artist shapes a wooden bear from a log, time-lapse",
        "A chain saw idles on the tailgate of a pickup truck beside a stack of firewood",
        "Close-up of the teeth of a chain saw blade as a file sharpens them one by one",
        "A chain saw cuts a fallen tree blocking a country road after a storm",
        "A chain saw lies in fresh snow next to a pile of split logs, smoke curling from a cabin",
        "A forest ranger carries a chain saw along a muddy trail, handheld camera follows",
        "Sparks of sunlight through sawdust as a chain saw slices a thick oak branch",
        "A chain saw on a workbench, the camera orbits it while dust motes drift in the light",
        "Two loggers take turns with a chain saw on a giant redwood stump",
        "A chain saw roars to life, its exhaust puffing blue smoke, cinematic low angle",
        "A gardener prunes an apple tree with a small chain saw on a bright autumn day",
        "A chain saw cuts firewood rounds while a dog watches from a safe distance",
        "Aerial view of a clearing where a chain saw crew works among fresh-cut logs",
    ],
    "church": [
        "A white church on a hill at sunrise, fog rolling through the valley below",
        "Drone shot circling a stone church in a small village, bells ringing",
        "Snow falls gently on a wooden church in a mountain town at night, warm windows glowing",
        "A Gothic church facade at dusk, the camera tilts up along its towering spire",
        "A small church by the sea, waves crashing against the rocks beneath it",
        "Time-lapse of clouds racing over an old brick church in the countryside",
        "A church in autumn, golden leaves swirling across the path to its doors",
        "Wide shot of a church reflected in a still lake at golden hour",
        "A church steeple rises above red rooftops as pigeons take flight",
        "A stone church stands alone in a field of lavender, slow aerial push-in",
        "Rain pours on a church square, umbrellas passing in front of the entrance",
        "A whitewashed church with a blue dome on a Greek island, boats drifting in the bay",
        "A church at night under a starry sky, the Milky Way arcing over its tower",
        "A wooden church in a Nordic forest, camera tracks along its carved doors",
        "Cherry blossoms fall in front of a red brick church in spring",
        "A church bell tower at noon, the bell swinging as the camera looks up from below",
        "Fog clears to reveal a ruined church on a windswept moor",
        "A church in a busy city street, traffic streaming past in time-lapse",
        "A tiny chapel-like church on a mountain pass, prayer flags fluttering nearby",
        "A church lit by fireworks on a festival night, crowds cheering in the square",
    ],
    "gas pump": [
        "A gas pump at a lonely desert station, heat shimmering off the asphalt",
        "Close-up of a hand lifting the nozzle from a gas pump, digits on the display start counting",
        "A vintage red gas pump outside a roadside diner at sunset",
        "Rain falls on a gas pump under flickering fluorescent lights at midnight",
        "A gas pump display spins through numbers as a car is refuelled, macro shot",
        "A rusty gas pump stands in tall grass beside an abandoned road",
        "Slow dolly shot past a row of gas pumps at a busy highway station",
        "A motorcyclist fills up at a gas pump, the camera circles around the bike",
        "Snow drifts around a gas pump at a mountain station, a truck idling nearby",
        "A gas pump glows under neon signs in a cyberpunk city street",
        "A family minivan pulls up to a gas pump on a summer road trip",
        "A gas pump nozzle clicks off, a drop of fuel falls in slow motion",
        "A restored 1950s gas pump in a car museum, spotlight slowly brightening",
        "Time-lapse of cars coming and going at a gas pump from morning to night",
        "A gas pump on a rural island, waves visible behind the small station",
        "Overhead shot of a gas pump island, cars arranged in neat rows",
        "A gas pump's screen shows a price as the attendant wipes the windshield",
        "A tow truck parked next to a gas pump at dawn, steam rising from a coffee cup",
        "A gas pump reflected in a puddle after the rain, city lights shimmering",
        "A dusty gas pump on Route 66, tumbleweeds rolling past",
    ],
    "tench": [
        "A tench glides through green pond water among swaying reeds, underwater shot",
        "An angler lifts a golden-green tench from a lake at dawn, water dripping",
        "Close-up of a tench's red eye and smooth scales as it turns in the water",
        "A tench noses through the muddy bottom of a pond, bubbles rising",
        "A fisherman releases a tench back into a misty lake, slow motion",
        "A tench swims beneath lily pads, sunlight flickering through the surface",
        "A tench in a clear aquarium tank, the camera tracks alongside it",
        "A young boy holds up a tench on a riverbank, smiling at the camera",
        "A tench rests near a sunken log, its fins barely moving",
        "Underwater time-lapse of a tench foraging at dusk in a quiet canal",
        "A tench in a landing net on a wooden jetty, morning mist over the water",
        "Two tench circle each other among weeds in a garden pond",
        "A tench darts away as a shadow passes over the water, slow motion",
        "Macro shot of the slimy olive skin of a tench glistening in the sun",
        "A tench is weighed on a scale by an angler in a rain jacket",
        "A tench surfaces briefly to take an insect, ripples spreading",
        "An old painting-style scene of a tench in a still millpond, gentle camera pan",
        "A tench swims past the camera in murky water, beams of light cutting through",
        "A tench lies on wet grass beside a fishing rod before being released",
        "A tench cruises along a reed bed as dragonflies hover above the surface",
    ],
    "garbage truck": [
        "A garbage truck rolls down a quiet street at dawn, its lights flashing",
        "The arm of a garbage truck lifts a green bin and tips it, close-up",
        "A garbage truck in the rain, workers hopping on and off the back step",
        "Aerial shot of a garbage truck weaving through a grid of city blocks",
        "A toy-like green garbage truck backs up with a beeping sound in a cul-de-sac",
        "A garbage truck compacts its load, the hydraulic blade pressing down",
        "A garbage truck drives past snow-covered houses on an early winter morning",
        "A child waves at a garbage truck from a window, the driver waves back",
        "A garbage truck unloads at a recycling center, seagulls circling overhead",
        "Low angle shot of a garbage truck's massive wheels rolling past the camera",
        "A garbage truck waits at a red light in a busy downtown intersection",
        "Time-lapse of a garbage truck collecting bins along a long suburban street",
        "A garbage truck on a narrow cobblestone street in an old European town",
        "A garbage truck's headlights cut through thick fog at 5 a.m.",
        "A shiny new garbage truck is washed with a pressure hose in a depot",
        "A garbage truck climbs a hill in San Francisco, cable car passing by",
        "A line of garbage trucks leaves the depot at sunrise, tracking shot",
        "A garbage truck collects cardboard behind a grocery store at night",
        "A garbage truck drives along a coastal road, waves breaking in the background",
        "Close-up of a garbage truck's side mirror reflecting workers at the curb",
    ],
    "English springer": [
        "An English springer spaniel bounds through a wheat field, ears flapping",
        "An English springer leaps into a lake to fetch a stick, slow motion splash",
        "Close-up of an English springer's face as it tilts its head at the camera",
        "An English springer runs along a beach at sunset, chasing the waves",
        "An English springer sniffs through autumn leaves in a forest",
        "A liver-and-white English springer sleeps by a crackling fireplace",
        "An English springer puppy tumbles over its own paws on a green lawn",
        "An English springer shakes water from its coat after a swim, droplets flying",
        "An English springer sits patiently beside a hunter in a misty field",
        "An English springer catches a frisbee mid-air in a city park",
        "An English springer trots beside a cyclist on a country lane",
        "An English springer digs in the snow, then looks up with a snowy nose",
        "An English springer spaniel wags its tail in the back seat of a car",
        "Tracking shot of an English springer racing through heather on a moor",
        "An English springer carries a duck decoy back to its owner by a pond",
        "An English springer is brushed on a grooming table, calm and content",
        "An English springer leaps over a log during an agility course",
        "An English springer sits on a porch at dusk watching fireflies",
        "An English springer plays tug-of-war with a rope toy in a kitchen",
        "An English springer walks along a muddy riverbank, reflection in the water",
    ],
    "golf ball": [
        "A golf ball rolls across a sunlit green and drops into the cup, slow motion",
        "A golf ball sits on a tee at dawn, dew sparkling on the grass",
        "Extreme close-up of a club face striking a golf ball, dimples compressing",
        "A golf ball flies high over a fairway against a blue sky, tracking shot",
        "A golf ball splashes into a pond beside the green",
        "A golf ball bounces down a cart path and into the rough",
        "A golf ball rests in a sand bunker as the wind blows grains across it",
        "A golf ball spins on a putting green, curving toward the hole",
        "A golf ball lands on a snowy course, leaving a small crater",
        "A golf ball rolls off a desk in an office putting game, coworkers cheering",
        "A golf ball is teed up on a cliffside course above the ocean",
        "Macro shot of a golf ball slowly rotating, light sliding over its dimples",
        "A golf ball ricochets off a tree trunk in a forest course",
        "A dog picks up a golf ball from the fairway and runs off with it",
        "A golf ball rolls through a miniature golf windmill, colorful lights around",
        "A golf ball sits on the lip of the cup, then finally drops in",
        "Rain beads on a golf ball resting in wet grass, shallow depth of field",
        "A golf ball launched at a driving range at night under floodlights",
        "A golf ball dropped from a height bounces on a concrete floor, slow motion",
        "A golf ball rolls down a long hallway carpet toward the camera",
    ],
    "parachute": [
        "A parachute opens above a green valley, the canopy snapping full of air",
        "A skydiver drifts under a red parachute over the ocean at sunset",
        "Aerial view of a parachute descending toward a patchwork of fields",
        "A parachute collapses gently on a grassy landing zone after touchdown",
        "Dozens of parachutes fill the sky during a military training jump",
        "A parachute glides past snow-capped mountains, helmet camera view",
        "A cargo parachute lowers a supply crate into a desert camp",
        "A colorful parachute floats over a beach, tourists watching from below",
        "Close-up of parachute lines tightening as the canopy inflates",
        "A parachute drifts through clouds, sunlight flaring through the fabric",
        "A tandem parachute spirals slowly above a coastal town",
        "A parachute is packed carefully on a hangar floor, time-lapse",
        "A parachute lands on a frozen lake, the jumper sliding to a stop",
        "Wide shot of a parachute silhouetted against a full moon",
        "A children's play parachute billows up in a schoolyard, kids running beneath",
        "A parachute drags a landing capsule across the water after splashdown",
        "A blue and yellow parachute sways in the wind over a vineyard",
        "A parachute descends past a lighthouse on a foggy morning",
        "From the ground, a parachute grows larger as it approaches the camera",
        "A drag parachute deploys behind a racing car on a salt flat",
    ],
    "French horn": [
        "A musician plays a French horn in an empty concert hall, spotlight on the bell",
        "Close-up of the coiled brass tubing of a French horn gleaming under stage lights",
        "A French horn player warms up in a park as autumn leaves fall",
        "Slow dolly along an orchestra that stops on the French horn section",
        "A French horn rests on a velvet-lined case, dust drifting in the light",
        "A student practices French horn by a window on a rainy afternoon",
        "A French horn is polished with a soft cloth, macro shot of the reflections",
        "A brass quintet performs in a town square, the French horn player in the center",
        "A French horn player's fingers press the valves, extreme close-up",
        "A French horn sits on a chair in a quiet rehearsal room, camera orbits it",
        "A French horn echoes across a mountain valley as the sun rises",
        "A craftsman hammers the bell of a French horn in a workshop",
        "A marching band's French horn section parades down a city street",
        "A French horn shines on a music stand in a jazz club at night",
        "A young girl lifts a French horn out of its case for the first time",
        "Silhouette of a French horn player against a sunset on a rooftop",
        "A French horn solo in a cathedral, light streaming through stained glass",
        "A French horn lies in the grass beside sheet music fluttering in the wind",
        "A French horn player empties the water key between pieces, close-up",
        "A French horn hangs on a wall among antique instruments, slow pan",
    ],
}

FACES_TEMPLATES: list[str] = [
    "{identity} giving a speech at a podium, close-up of the face, news footage",
    "A close-up portrait video of {identity} smiling at the camera, soft studio light",
    "{identity} walking through a crowd and waving, handheld camera",
    "{identity} laughing during a television interview, medium close-up",
    "{identity} sitting at a desk reading documents, then looking up at the camera",
    "A slow-motion shot of {identity} turning their head toward the camera",
    "{identity} shaking hands with a visitor in front of a row of flags",
    "{identity} speaking into a microphone outdoors, wind in their hair",
    "{identity} drinking a cup of coffee in a cafe, natural window light",
    "A headshot video of {identity} against a plain grey background, neutral expression",
    "{identity} stepping out of a car and greeting photographers",
    "{identity} listening attentively at a conference table, close-up of the face",
    "{identity} walking in a garden on a sunny afternoon, tracking shot",
    "{identity} nodding and smiling during a press conference",
    "{identity} looking out of a window on a rainy day, pensive expression",
    "{identity} waving from the top of an airplane staircase",
    "A black-and-white close-up of {identity} talking, documentary style",
    "{identity} reading a book in a library, warm lamp light on the face",
    "{identity} clapping at a ceremony, camera slowly pushes in on the face",
    "{identity} sitting by a fireplace and speaking calmly to the camera",
    "{identity} at a town hall meeting answering a question, medium shot",
    "{identity} walking along a beach at sunset, face lit by golden light",
    "{identity} wearing a winter coat in falling snow, close-up",
    "{identity} signing a document and then looking up with a smile",
    "{identity} visiting a school and talking with students, face in focus",
    "A profile shot of {identity} looking into the distance, shallow depth of field",
    "{identity} standing on a balcony and waving to a crowd below",
    "{identity} in a television studio under bright lights, looking into the lens",
    "{identity} walking down a corridor with aides, camera moving backwards in front",
    "A smiling {identity} raising a glass at a formal dinner, close-up",
]


def _seeds(tag: str, n: int) -> list[int]:
    rng = random.Random(f"t2v-unlearn/{tag}")
    return rng.sample(range(10_000), n)


def build_imagenet10() -> PromptSuite:
    recs = []
    for cls in IMAGENET10_CLASSES:
        prompts = IMAGENET10_PROMPTS[cls]
        assert len(prompts) == 20, (cls, len(prompts))
        slug = cls.lower().replace(" ", "_")
        for i, (p, seed) in enumerate(zip(prompts, _seeds(f"imagenet10/{cls}", 20))):
            words = find_concept_words(p, [cls])
            assert words, (cls, p)
            recs.append(
                PromptRecord(
                    prompt=p,
                    concept=cls,
                    category="object",
                    seed=seed,
                    concept_words=tuple(words),
                    id=f"{slug}-{i:02d}",
                )
            )
    return PromptSuite(recs, name="imagenet10")


def build_faces_templates() -> PromptSuite:
    assert len(FACES_TEMPLATES) == 30
    seeds = _seeds("faces", len(FACES_TEMPLATES))
    return PromptSuite(
        [
            PromptRecord(prompt=t, category="face", seed=s, concept_words=("{identity}",), id=f"t{i:02d}")
            for i, (t, s) in enumerate(zip(FACES_TEMPLATES, seeds))
        ],
        name="faces_templates",
    )


def build_all() -> dict[str, PromptSuite]:
    templates = build_faces_templates()
    return {
        "imagenet10_video.jsonl": build_imagenet10(),
        "faces_templates.jsonl": templates,
        "faces_5ids.jsonl": expand_identity_templates(templates, FACES_IDENTITIES),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    bad = 0
    for fname, suite in build_all().items():
        path = args.out / fname
        if args.check:
            same = path.exists() and PromptSuite.load(path).sha256() == suite.sha256()
            print(f"{'ok' if same else 'DIFFERS'}  {path}")
            bad += not same
        else:
            suite.save(path)
            print(f"wrote {len(suite)} prompts to {path} (sha256 {suite.sha256()[:12]})")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
