"""Head-to-bot race benchmark: benchmarks/race_oa.py with 3 bot cars at DRfC's defaults.

Usage: python benchmarks/race_h2b.py [--minutes 30]
Last line: race_h2b minutes=<m> avg_lap_s=<t> laps=<k>/3 crashes=<c>
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from race_oa import main

if __name__ == "__main__":
    main("head_to_bot")
