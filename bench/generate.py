"""Realistic contact files for benchmarks: 10 columns, 0-3 segments a row, several countries and languages."""

from __future__ import annotations

import csv
import random
from pathlib import Path

HEADER = [
    "Country Code",
    "First Name",
    "Last Name",
    "Email",
    "Mobile Number",
    "Account Number",
    "Organization",
    "External ID",
    "Segments",
    "Language",
]
# country, languages, national mobile pattern (# = random digit), share of rows
COUNTRIES = [
    ("DE", ["de", "de-DE"], "0151 ########", 0.30),
    ("AT", ["de-AT"], "0664 #######", 0.08),
    ("CH", ["de-CH", "fr-CH"], "079 ### ## ##", 0.05),
    ("US", ["en-US", "en"], "(415) 2##-####", 0.20),
    ("CA", ["en-CA", "fr-CA"], "(514) 2##-####", 0.05),
    ("GB", ["en-GB"], "07911 ######", 0.08),
    ("FR", ["fr", "fr-FR"], "06 ## ## ## ##", 0.10),
    ("IT", ["it"], "312 ### ####", 0.05),
    ("ES", ["es"], "612 ## ## ##", 0.04),
    ("BR", ["pt-BR"], "(11) 9####-####", 0.05),
]
FIRST = [
    "Anna",
    "Lukas",
    "Sophie",
    "Jonas",
    "Emily",
    "Michael",
    "Camille",
    "Hugo",
    "Giulia",
    "Lucía",
    "Noah",
    "Léa",
    "Oliver",
    "Charlotte",
    "Gabriel",
    "Mia",
    "Paul",
    "Hannah",
    "Liam",
    "Olivia",
    "Jürgen",
    "Zoë",
]
LAST = [
    "Müller",
    "Schmidt",
    "Gruber",
    "Smith",
    "Johnson",
    "Dubois",
    "Moreau",
    "Rossi",
    "García",
    "Silva",
    "Tremblay",
    "Weber",
    "Wagner",
    "Brown",
    "Martin",
    "Fischer",
    "Meier",
    "Laurent",
    "Roy",
    "Becker",
]
SEGMENTS = [
    "Newsletter",
    "Branch Vienna",
    "Branch Munich",
    "Region North America",
    "Region France",
    "Service Plan Premium",
    "Electric Vehicles",
    "Fleet",
    "Used Cars",
    "Parts & Service",
]
ORGS = [
    "",
    "",
    "",
    "Acme GmbH",
    "Fleet Services Inc.",
    "Dubois SARL",
    "Rossi S.p.A.",
    "Smith, Jones & Partners",
]


def _digits(pattern: str, rng: random.Random) -> str:
    return "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in pattern)


def generate(path: Path, *, rows: int, seed: int = 7, variant: int = 0) -> Path:
    """Write `rows` contacts. variant=1 keeps the same keys but changes organisation and segments."""
    rng = random.Random(seed)
    changes = random.Random(seed + variant)  # the variant's own draws leave every other column alike
    weights = [c[3] for c in COUNTRIES]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i in range(rows):
            country, languages, mobile_pattern, _ = rng.choices(COUNTRIES, weights)[0]
            first, last = rng.choice(FIRST), rng.choice(LAST)
            has_email = rng.random() < 0.9
            has_mobile = not has_email or rng.random() < 0.5
            segs = rng.sample(SEGMENTS, rng.randrange(4))
            org = rng.choice(ORGS)
            if variant:
                segs = changes.sample(SEGMENTS, changes.randrange(4))
                org = f"Org {variant}-{i % 977}"
            writer.writerow(
                [
                    country,
                    first,
                    last,
                    f"{first.lower()}.{last.lower()}.{i}@example.com".encode("ascii", "ignore").decode()
                    if has_email
                    else "",
                    _digits(mobile_pattern, rng) if has_mobile else "",
                    str(100000 + i),
                    org,
                    f"C{i:08d}",
                    "; ".join(segs),
                    rng.choice(languages),
                ]
            )
    return path


if __name__ == "__main__":
    import sys

    generate(Path(sys.argv[1]), rows=int(sys.argv[2]))
