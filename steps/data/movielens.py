"""MovieLens ratings as a time-ordered stream.

Two sources, one table (columns user, movie, rating, timestamp, genres, year):
- `dslabs`: the Debian package r-cran-dslabs ships the MovieLens "latest-small" 2016 snapshot
  (100,004 ratings, 671 users, 9,066 movies); `export_dslabs` writes it as CSV with Rscript.
  Install: `apt-get install --no-install-recommends r-cran-dslabs`.
- `grouplens`: ratings.csv + movies.csv of a GroupLens release (ml-25m at full scale).
MovieLens data are under the GroupLens research-use terms (no redistribution, cite Harper &
Konstan 2015); the R package itself is Artistic-2.0.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from steps.core.errors import ArtifactError

INSTALL = "install r-cran-dslabs: apt-get install --no-install-recommends r-cran-dslabs"
R_EXPORT = 'library(dslabs); data(movielens); write.csv(movielens, "{out}", row.names=FALSE)'
COLUMNS = ("user", "movie", "rating", "timestamp", "genres", "year")


def export_dslabs(out_csv: str | Path, rscript: str = "Rscript", timeout: float = 120.0) -> Path:
    """Write dslabs' `movielens` data frame to `out_csv` with Rscript; one clear error when R or
    the package is missing."""
    exe = shutil.which(rscript)
    if exe is None:
        raise ArtifactError(f"Rscript ('{rscript}') not found; {INSTALL}")
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([exe, "-e", R_EXPORT.format(out=out.as_posix())], capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0 or not out.is_file():
        why = " ".join((res.stderr or res.stdout).split())[-300:]
        raise ArtifactError(f"Rscript could not export dslabs::movielens ({why}); {INSTALL}")
    return out


def read_dslabs_csv(path: str | Path) -> pd.DataFrame:
    """The dslabs export: movieId,title,year,genres,userId,rating,timestamp."""
    df = _read(path, ("movieId", "year", "genres", "userId", "rating", "timestamp"))
    return _finish(df.rename(columns={"userId": "user", "movieId": "movie"}))


def read_grouplens(folder: str | Path) -> pd.DataFrame:
    """A GroupLens release folder (ratings.csv: userId,movieId,rating,timestamp; movies.csv:
    movieId,title,genres, the year in the title)."""
    folder = Path(folder)
    ratings = _read(folder / "ratings.csv", ("userId", "movieId", "rating", "timestamp"))
    movies = _read(folder / "movies.csv", ("movieId", "title", "genres"))
    movies["year"] = pd.to_numeric(movies["title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    df = ratings.merge(movies[["movieId", "genres", "year"]], on="movieId", how="left")
    return _finish(df.rename(columns={"userId": "user", "movieId": "movie"}))


def _read(path, need) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"missing MovieLens file {path}")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise ArtifactError(f"MovieLens file {path} is corrupt ({e.__class__.__name__})") from None
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ArtifactError(f"MovieLens file {path} lacks columns {', '.join(missing)} (has {', '.join(df.columns)})")
    return df


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    df = df[list(COLUMNS)].copy()
    df["genres"] = df["genres"].fillna("(no genres listed)").astype(str)
    df["year"] = pd.to_numeric(df["year"], errors="coerce")
    return df.reset_index(drop=True)


def to_stream(df: pd.DataFrame, positive: float) -> pd.DataFrame:
    """Time-ordered events: t in days since the first rating, click = rating >= positive, and
    sparse features user, movie, genre (the first listed) and decade, each as its own ID space."""
    df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    genre = df["genres"].str.split("|").str[0]
    genre_id = pd.Series(pd.factorize(genre, sort=True)[0], index=df.index)
    decade = (df["year"].fillna(0) // 10).astype(np.int64)
    ts = df["timestamp"].to_numpy(np.float64)
    return pd.DataFrame({
        "t": (ts - ts[0]) / 86400.0,
        "click": (df["rating"].to_numpy() >= positive).astype(np.int8),
        "user": df["user"].to_numpy(np.int64),
        "movie": (np.int64(1) << np.int64(40)) + df["movie"].to_numpy(np.int64),
        "genre": (np.int64(2) << np.int64(40)) + genre_id.to_numpy(np.int64),
        "decade": (np.int64(3) << np.int64(40)) + decade.to_numpy(np.int64),
        "rating": df["rating"].to_numpy(np.float32),
    })
