#!/usr/bin/env bash
# The weekly Numerai Signals job, unattended (cron or a systemd timer; see docs/operations.md):
#   download the live universe → this week's headlines → encode (only texts the store lacks)
#   → join → features → predict → validate → upload.
#
# Each run works in a dated folder, $WORK_ROOT/$WEEK, and logs to $WORK_ROOT/$WEEK/weekly.log.
# Re-running a week that was submitted uploads nothing: it re-validates the file it sent and exits 0.
# The `submitted` marker is written from the receipt `signalkit submit` prints, whenever Numerai
# confirms that this week's submission exists (also when it was found after a failed create call).
# Re-running a week whose upload got as far as registering the submission (signalkit left a
# .signal.csv.*.submission.json journal) goes straight back to the upload of the same signal.csv:
# `signalkit submit` asks Numerai first, and if the submission is there it uploads nothing and the
# marker is written; if Numerai cannot be asked, the run fails without uploading.
# Re-running a week that failed before that redoes the steps after the (kept) live-universe download.
# Any failing step stops the script with a non-zero exit status and the step named in the log.
#
# Settings (environment variables):
#   MODEL_NAME     your Signals model's name on numer.ai                                  (required)
#   MODEL          trained model, e.g. models/model.txt (with model.json beside it)        (required)
#   HEADLINES_DIR  folder with the headlines of the look-back window (30 days by default):
#                  one CSV/Parquet/JSONL file, or several CSV files with the same header
#                  (required unless NEWS_SOURCE is set)
#   NEWS_SOURCE    fetch the headlines instead: `signalkit news fetch --source` with these sources,
#                  comma-separated (sec, alpaca, finnhub, polygon, tiingo), the same settings as
#                  [news] in a run config; HEADLINES_DIR is then unused; the gaps left are logged
#   NEWS_TICKERS   the symbols to fetch: a file (one per line, or CSV with a ticker column) or
#                  AAPL,MSFT                                      (required with NEWS_SOURCE)
#   NEWS_DIR       news folder kept between weeks (fetch state, monthly partitions)  [~/.signalkit/news]
#   NEWS_DAYS      days back from today to fetch (only what the state lacks is asked)  [35]
#   NEWS_OPTS      extra options for `signalkit news fetch`, e.g. "--ticker-map map.csv --rate 100"
#                  or "--base-url polygon=https://proxy/polygon" (a proxy for one source);
#                  keys come from the environment (SEC_USER_AGENT, APCA_API_KEY_ID, ...) or
#                  ~/.signalkit/credentials (mode 600)
#   STORE          encoder store folder, kept between weeks      [~/.signalkit/store]
#   ENCODE_MODEL   encoder: hub id or local folder; the same one the model was trained with
#                  [ProsusAI/finbert]
#   ENCODE_OPTS    extra options for `signalkit encode`, e.g. "--offline --device cuda"
#   PIT_OPTS       point-in-time options for the join, exactly as used in training,
#                  e.g. "--window-days 30 --cutoff-hours 0 --ticker-map map.csv --timezone America/New_York";
#                  features take them from the joined rows, and predict stops the week before any
#                  upload when they (or the encoder, or the PCA) differ from the model's card
#   FEATURES_OPTS  extra options for `signalkit features` (rarely needed: the encoder folder and the
#                  PCA projection come from the model's card through `features --like MODEL`)
#   ASK_MODEL      for a model trained on prompt answers (`[ask]` in signalkit run): the same decoder
#                  (hub id or folder); the week's headlines are asked into ASK_STORE and the features
#                  read them. Unset, such a model stops at features (--like asks for --ask-store)
#   ASK_QUESTIONS  the questions TOML the model was trained with          (required with ASK_MODEL)
#   ASK_STORE      ask store folder, kept between weeks                [~/.signalkit/ask-store]
#   ASK_OPTS       extra options for `signalkit ask` as in training, e.g. "--offline --anonymise"
#   WORK_ROOT      where the dated work folders go               [~/.signalkit/weekly]
#   WEEK           the work folder's name                        [ISO week, e.g. 2026-W47]
#   DATASET        Numerai's live universe file                  [signals/v2.1/live.parquet]
#   SIGNALKIT      the signalkit binary        [signalkit on PATH, else target/release/signalkit]
#   DRY_RUN=1      validate and print what would be sent; upload nothing
#   GATE_OPTS      options for submit's churn gate, e.g. "--neutralizers N.parquet --sample-weights W.parquet"
#                  (adds turnover) or "--history DIR"; the gate compares this week's signal with the
#                  model's last five uploads and fails the week, before any upload, when churn ≥ 0.15
#                  or turnover ≥ 0.25 (Numerai would set the stake to zero)
#   ALLOW_CHURN=1  upload even above those limits (the numbers are still logged)
# The API key comes from NUMERAI_PUBLIC_ID + NUMERAI_SECRET_KEY or ~/.numerai/credentials (mode 600);
# NUMERAI_API_URL overrides the API endpoint. The script never prints the key.
set -Eeuo pipefail

die() {
    echo "weekly: error: $*" >&2
    exit 1
}

: "${MODEL_NAME:?set MODEL_NAME to your Signals model name}"
: "${MODEL:?set MODEL to the trained model file (model.txt)}"
NEWS_SOURCE=${NEWS_SOURCE:-}
if [[ -z $NEWS_SOURCE ]]; then
    : "${HEADLINES_DIR:?set HEADLINES_DIR to the folder holding the headlines of the week (or NEWS_SOURCE to fetch them)}"
else
    : "${NEWS_TICKERS:?set NEWS_TICKERS to the symbols to fetch news for (a file or AAPL,MSFT)}"
fi
HEADLINES_DIR=${HEADLINES_DIR:-}
NEWS_DIR=${NEWS_DIR:-$HOME/.signalkit/news}
NEWS_DAYS=${NEWS_DAYS:-35}
NEWS_OPTS=${NEWS_OPTS:-}
STORE=${STORE:-$HOME/.signalkit/store}
ENCODE_MODEL=${ENCODE_MODEL:-ProsusAI/finbert}
ENCODE_OPTS=${ENCODE_OPTS:-}
PIT_OPTS=${PIT_OPTS:-}
FEATURES_OPTS=${FEATURES_OPTS:-}
ASK_MODEL=${ASK_MODEL:-}
ASK_QUESTIONS=${ASK_QUESTIONS:-}
ASK_STORE=${ASK_STORE:-$HOME/.signalkit/ask-store}
ASK_OPTS=${ASK_OPTS:-}
if [ -n "$ASK_MODEL" ] && [ -z "$ASK_QUESTIONS" ]; then
    die "ASK_MODEL needs ASK_QUESTIONS: the questions TOML the model was trained with"
fi
WORK_ROOT=${WORK_ROOT:-$HOME/.signalkit/weekly}
WEEK=${WEEK:-$(date -u +%G-W%V)}
DATASET=${DATASET:-signals/v2.1/live.parquet}
DRY_RUN=${DRY_RUN:-0}

if [[ -z ${SIGNALKIT:-} ]]; then
    if command -v signalkit >/dev/null 2>&1; then
        SIGNALKIT=$(command -v signalkit)
    else
        SIGNALKIT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/signalkit"
    fi
fi
[[ -x $SIGNALKIT ]] || die "signalkit binary not found at '$SIGNALKIT': build it (cargo build --release) or set SIGNALKIT"
[[ -f $MODEL ]] || die "model file '$MODEL' not found: train one (signalkit train) or fix MODEL"
[[ -n $NEWS_SOURCE || -d $HEADLINES_DIR ]] || die "headlines folder '$HEADLINES_DIR' not found: fix HEADLINES_DIR"

WORK="$WORK_ROOT/$WEEK"
mkdir -p "$WORK"
LOG="$WORK/weekly.log"
# Everything from here on goes to the terminal (or cron's mail) and to the log.
exec > >(tee -a "$LOG") 2>&1

log() { echo "$(date -u +%FT%TZ) weekly[$WEEK]: $*"; }
STEP="setup"
trap 'rc=$?; trap - ERR; log "FAILED (exit $rc) in step: $STEP"; log "see $LOG; fix the cause and run again (finished steps are redone, the download is kept)"' ERR

# One run per week at a time.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$WORK/.lock"
    flock -n 9 || die "another weekly.sh run holds $WORK/.lock"
fi

sk() {
    STEP="signalkit $*"
    log "$STEP"
    "$SIGNALKIT" "$@"
}

log "start: model '$MODEL_NAME', work folder $WORK"
GATE_OPTS=${GATE_OPTS:-}
SUBMIT=(submit "$WORK/signal.csv" --model-name "$MODEL_NAME" --universe "$WORK/live.parquet")
# shellcheck disable=SC2206 # GATE_OPTS is a list of options, split on purpose
SUBMIT+=($GATE_OPTS)
ALLOW=()
[[ ${ALLOW_CHURN:-0} == 1 ]] && ALLOW=(--allow-churn)

# Uploads signal.csv (at most one submission: see above) and writes the `submitted` marker from
# the receipt. STEP is set here, in this shell: inside $(...) it would not reach the ERR trap.
upload() {
    STEP="upload: signalkit ${SUBMIT[*]}"
    log "$STEP"
    local out receipt
    out=$("$SIGNALKIT" "${SUBMIT[@]}" "${ALLOW[@]}")
    echo "$out"
    receipt=$(sed -n 's/^receipt: //p' <<<"$out" | tail -n 1)
    [[ -n $receipt ]] || die "signalkit submit printed no receipt: look at the model's submissions on signals.numer.ai before running again"
    printf '%s %s\n%s\n' "$(date -u +%FT%TZ)" "$MODEL_NAME" "$receipt" >"$WORK/.submitted.tmp"
    mv -f "$WORK/.submitted.tmp" "$WORK/submitted"
    log "done: Numerai has the submission of $WORK/signal.csv: $receipt"
}

if [[ -f $WORK/submitted ]]; then
    log "already submitted this week ($(head -n 1 "$WORK/submitted")); re-validating only"
    sk "${SUBMIT[@]}" --dry-run --allow-churn
    log "done (nothing uploaded)"
    exit 0
fi

# An earlier run got as far as registering the submission: ask Numerai (through submit) before
# recomputing anything, so that a submission it already has is not uploaded again.
if [[ $DRY_RUN != 1 && -s $WORK/signal.csv ]] && compgen -G "$WORK/.signal.csv.*.submission.json" >/dev/null; then
    log "an earlier run of this week reached the upload: checking with Numerai before anything else"
    upload
    exit 0
fi

# 1. The live universe (kept: it is this week's, even if a later step fails).
if [[ -s $WORK/live.parquet ]]; then
    log "live universe already downloaded"
else
    sk download "$DATASET" --out "$WORK"
    base=$(basename "$DATASET")
    [[ $base == live.parquet ]] || mv -f "$WORK/$base" "$WORK/live.parquet"
fi

# 2. This week's headlines: fetched (NEWS_SOURCE), or one file as is, or several CSV files joined
#    under one header.
if [[ -n $NEWS_SOURCE ]]; then
    from=$(date -u -d "-$NEWS_DAYS days" +%F)
    to=$(date -u +%F)
    # Every source in one call (as [news] in `signalkit run` fetches them); each resumes from its
    # state.json, so only the days it lacks are asked.
    # shellcheck disable=SC2086  # NEWS_OPTS is an option list
    sk news fetch --source "$NEWS_SOURCE" --tickers "$NEWS_TICKERS" --from "$from" --to "$to" --out "$NEWS_DIR" --quiet $NEWS_OPTS
    # The days still not covered (a plan limit, a symbol a vendor does not know), with why.
    STEP="signalkit news status $NEWS_DIR"
    status=$("$SIGNALKIT" news status "$NEWS_DIR")
    grep -E '^[a-z]+: |^ +gap ' <<<"$status" || true
    HEADLINES="$NEWS_DIR/headlines.parquet"
    log "headlines: $HEADLINES (fetched from $NEWS_SOURCE, $from to $to)"
else
    mapfile -t files < <(find "$HEADLINES_DIR" -maxdepth 1 -type f \
        \( -name '*.csv' -o -name '*.parquet' -o -name '*.pq' -o -name '*.jsonl' -o -name '*.ndjson' \) | LC_ALL=C sort)
    ((${#files[@]} > 0)) || die "no headline files (*.csv, *.parquet, *.jsonl) in $HEADLINES_DIR"
    if ((${#files[@]} == 1)); then
        HEADLINES=${files[0]}
    else
        HEADLINES="$WORK/headlines.csv"
        header=$(head -n 1 "${files[0]}")
        tmp="$WORK/.headlines.csv.tmp"
        echo "$header" >"$tmp"
        for f in "${files[@]}"; do
            [[ $f == *.csv ]] || die "$f: several headline files must all be CSV (or give one file)"
            [[ $(head -n 1 "$f") == "$header" ]] || die "$f: its header differs from ${files[0]}'s; use the same columns"
            tail -n +2 "$f" | sed -e '$a\' >>"$tmp"
        done
        mv -f "$tmp" "$HEADLINES"
    fi
    log "headlines: $HEADLINES (${#files[@]} file(s))"
fi

# 3. Encode (the store skips texts it already has), join, features, predict.
# shellcheck disable=SC2086  # ENCODE_OPTS, PIT_OPTS and FEATURES_OPTS are option lists
# predict refuses features whose join options, encoder or PCA differ from the model's card.
sk encode --model "$ENCODE_MODEL" --headlines "$HEADLINES" --store "$STORE" $ENCODE_OPTS
# shellcheck disable=SC2086
sk join --targets "$WORK/live.parquet" --headlines "$HEADLINES" --out "$WORK/rows.parquet" $PIT_OPTS
ask_store=()
if [ -n "$ASK_MODEL" ]; then
    # shellcheck disable=SC2086
    sk ask --model "$ASK_MODEL" --questions "$ASK_QUESTIONS" --headlines "$HEADLINES" --store "$ASK_STORE" $ASK_OPTS
    ask_store=(--ask-store "$ASK_STORE")
fi
# shellcheck disable=SC2086
sk features --rows "$WORK/rows.parquet" --store "$STORE" --like "$MODEL" --out "$WORK/features.parquet" \
    ${ask_store[@]+"${ask_store[@]}"} $FEATURES_OPTS
sk predict --model "$MODEL" --features "$WORK/features.parquet" --out "$WORK/signal.csv"

# 4. Validate, then upload (submit validates again before any network call).
sk "${SUBMIT[@]}" "${ALLOW[@]}" --dry-run
if [[ $DRY_RUN == 1 ]]; then
    log "DRY_RUN=1: nothing uploaded"
    exit 0
fi
upload
