"""Fetch the LEP1 reference data from HEPData (for machines without the shared data folder).

    python -m bayestune.hep.fetch --dest ~/lep-data
    export BAYESTUNE_LEP_DATA=~/lep-data

Downloads the YODA exports of the ALEPH 1996 and DELPHI 1996 records with Rivet analysis
names, so that paths read ``/REF/ALEPH_1996_S3486095/dNN-xNN-yNN`` as in Rivet's reference
files. The PDG multiplicity table is not a HEPData record: copy
``PDG_HADRON_MULTIPLICITIES.yoda`` from Rivet's reference-data folder
(``rivet-config --datadir``) if you use the hadron-rate observables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .io import download_hepdata

RECORDS = {  # Inspire id -> Rivet analysis name
    428072: "ALEPH_1996_S3486095",
    424112: "DELPHI_1996_S3430090",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download LEP1 reference data from HEPData")
    parser.add_argument("--dest", required=True, help="folder to write the YODA files into")
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    for inspire, rivet in RECORDS.items():
        files = download_hepdata(inspire, dest, rivet=rivet)
        print(f"ins{inspire} ({rivet}): {', '.join(str(f) for f in files)}")
    print(f"now: export BAYESTUNE_LEP_DATA={dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
