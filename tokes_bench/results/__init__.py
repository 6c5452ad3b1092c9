"""Result records (one JSON object per line) and the leaderboards built from them."""
