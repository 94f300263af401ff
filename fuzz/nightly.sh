#!/usr/bin/env bash
# Nightly fuzzing: every cargo-fuzz target for its share of the time, then corpus minimization,
# then a summary in target/fuzz-{nightly,smoke}/summary.{md,json}. Exits non-zero when a target crashed
# (or hung, or ran out of memory); the reproducers are listed in the summary.
#
#   fuzz/nightly.sh [MINUTES]   total wall time over all targets (default 30; fractions allowed)
#   fuzz/nightly.sh --smoke     CI smoke run: 10 seconds per target, no minimization, built with
#                               --dev (ASan + debug assertions, unoptimized: a cold build takes
#                               ~3.5 min instead of ~17 for the optimized one)
#
# Seeds are read from corpus/<target>/ (committed, read-only here); inputs the fuzzer finds go to
# fuzz/corpus/<target>/ and crashes to fuzz/artifacts/<target>/ (both git-ignored). Replay a
# crash with `cargo +nightly fuzz run <target> <file>` from fuzz/, or on stable by copying it to
# corpus/<target>/regressions/ and running `cargo test -p mcproof-tests --test fuzz_replay`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
# Keep in step with fuzz/Cargo.toml and tests/tests/fuzz_replay.rs.
TARGETS=(jsonrpc_parse jsonrpc_differential schema_validate sanitize path_guard token_verify oauth_params harness_parsers)

MODE=nightly
MINUTES=30
case "${1:-}" in
  --smoke) MODE=smoke ;;
  -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
  "") ;;
  *) MINUTES="$1" ;;
esac
OUT="$ROOT/target/fuzz-$MODE"
BUILD_FLAGS=()
TIMEOUT=10
if [[ $MODE == smoke ]]; then
  PER_TARGET=10
  BUILD_FLAGS=(--dev)
  TIMEOUT=30 # unoptimized code: a slow input is not a hang
else
  if ! PER_TARGET=$(awk -v m="$MINUTES" -v n="${#TARGETS[@]}" 'BEGIN { if (m !~ /^[0-9]*\.?[0-9]+$/ || m <= 0) exit 1; s = int(m * 60 / n); print (s < 1 ? 1 : s) }'); then
    echo "nightly.sh: MINUTES must be a positive number, got '$MINUTES'" >&2
    exit 2
  fi
fi

# Toolchain: cargo-fuzz needs nightly (sanitizer flags). Install it if missing, or say why not.
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "nightly.sh: installing the nightly toolchain (rustup toolchain install nightly --profile minimal)" >&2
  if ! rustup toolchain install nightly --profile minimal; then
    echo "nightly.sh: cannot install a nightly toolchain; cargo-fuzz needs one. Install rustup/nightly and retry." >&2
    exit 3
  fi
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "nightly.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  if ! cargo install cargo-fuzz --locked; then
    echo "nightly.sh: cannot install cargo-fuzz" >&2
    exit 3
  fi
fi

mkdir -p "$OUT"
echo "nightly.sh: building ${#TARGETS[@]} targets" >&2
(cd "$FUZZ" && cargo +nightly fuzz build "${BUILD_FLAGS[@]}") >"$OUT/build.log" 2>&1 || {
  tail -40 "$OUT/build.log" >&2
  echo "nightly.sh: build failed (log: $OUT/build.log)" >&2
  exit 4
}

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
marker="$OUT/.started"
touch "$marker"
crashed=0
rows=()
json_rows=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$FUZZ/corpus/$t" "$FUZZ/artifacts/$t"
  # libFuzzer reads corpus directories recursively; regressions belong to the stable replay
  # (an open one would stop the target at once), so only the top-level seeds are handed over.
  seed_dir="$OUT/seeds/$t"
  rm -rf "$seed_dir" && mkdir -p "$seed_dir"
  find "$ROOT/corpus/$t" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$seed_dir/" \;
  log="$OUT/$t.log"
  echo "nightly.sh: $t for ${PER_TARGET}s" >&2
  # The first corpus directory receives new inputs (git-ignored); the committed seeds come second.
  set +e
  (cd "$FUZZ" && cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$t" "$FUZZ/corpus/$t" "$seed_dir" -- \
    -dict="$ROOT/corpus/$t.dict" -max_total_time="$PER_TARGET" -timeout="$TIMEOUT" -rss_limit_mb=2048 \
    -print_final_stats=1 -close_fd_mask=1) >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  last=$(grep -o ' cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  if [[ $MODE == nightly && $rc -eq 0 ]]; then
    (cd "$FUZZ" && cargo +nightly fuzz cmin "$t" "$FUZZ/corpus/$t" -- -dict="$ROOT/corpus/$t.dict") >"$OUT/$t.cmin.log" 2>&1 ||
      echo "nightly.sh: cmin of $t failed (log: $OUT/$t.cmin.log)" >&2
  fi
  corpus_size=$(find "$FUZZ/corpus/$t" -type f | wc -l | tr -d ' ')
  seeds=$(find "$ROOT/corpus/$t" -maxdepth 1 -type f ! -name '.*' | wc -l | tr -d ' ')
  mapfile -t found < <(find "$FUZZ/artifacts/$t" -type f -newer "$marker" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  if [[ $rc -ne 0 || ${#found[@]} -gt 0 ]]; then
    crashed=1
  fi
  status=ok
  [[ $rc -ne 0 ]] && status="failed (exit $rc)"
  repro=""
  repro_json=""
  for f in "${found[@]}"; do
    rel="${f#"$ROOT"/}"
    repro+="${repro:+, }\`$rel\`"
    repro_json+="${repro_json:+,}\"$rel\""
  done
  rows+=("| $t | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $seeds | $corpus_size | ${#found[@]} | ${repro:-—} | $status |")
  json_rows+=("{\"target\":\"$t\",\"seconds\":$PER_TARGET,\"executions\":${execs:-null},\"execs_per_sec\":${rate:-null},\"coverage\":${cov:-null},\"features\":${ft:-null},\"seeds\":$seeds,\"corpus_size\":$corpus_size,\"crashes\":${#found[@]},\"reproducers\":[${repro_json}],\"exit_code\":$rc}")
done
rm -f "$marker"
finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)
nightly=$(rustc +nightly --version 2>/dev/null || echo unknown)
fuzz_version=$(cargo +nightly fuzz --version 2>/dev/null || echo unknown)

{
  echo "# Fuzzing summary ($MODE)"
  echo
  echo "Started $started, finished $finished; ${PER_TARGET}s per target, one job; $nightly; $fuzz_version."
  echo "Command: \`fuzz/nightly.sh ${1:-}\`"
  echo
  echo "| target | executions | execs/s | cov | ft | seeds | corpus (after cmin) | crashes | reproducers | run |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "\`cov\` is libFuzzer's count of covered edges at the end of the run, \`ft\` its feature count."
} >"$OUT/summary.md"
{
  printf '{"mode":"%s","started":"%s","finished":"%s","seconds_per_target":%s,"toolchain":"%s","cargo_fuzz":"%s","crashed":%s,"targets":[' \
    "$MODE" "$started" "$finished" "$PER_TARGET" "$nightly" "$fuzz_version" "$([[ $crashed -eq 1 ]] && echo true || echo false)"
  (IFS=,; printf '%s' "${json_rows[*]}")
  printf ']}\n'
} >"$OUT/summary.json"

cat "$OUT/summary.md"
if [[ $crashed -ne 0 ]]; then
  echo "nightly.sh: at least one target crashed; see the reproducers above and the logs in $OUT" >&2
  exit 1
fi
