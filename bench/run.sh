#!/usr/bin/env bash
# Runs the BenchmarkDotNet suite of bench/AsyncScopes.Benchmarks and makes the results table of docs/benchmarks.md from
# BenchmarkDotNet's own reports of the runs (its CSV and GitHub Markdown exports, read by bench/BenchReport) and the
# targets in bench/targets.json. The one way to make that table:
#
#   bench/run.sh --runs 2
#
# Each run is a full run of the suite (BenchmarkDotNet's default job, --filter '*', Release), one after the other, with
# its artifacts in a folder of its own under bench/results/. Once all runs are done, their reports (*-report.csv,
# *-report-github.md) and a run-info.txt (dates, commit) replace those in docs/benchmarks/run-N/, and the region of
# docs/benchmarks.md between <!-- results:begin --> and <!-- results:end --> is made again from them. The table is
# printed on stdout too; everything else goes to stderr.
#
# Options:
#   --runs N        how many runs, one after the other (default 2)
#   --quick         BenchmarkDotNet's short job (1 launch, 2 warm-up and 5 measured iterations), for a change in
#                   progress: the table says "quick run: not a verdict" and goes to bench/results/quick.md
#   --filter GLOB   BenchmarkDotNet's --filter (default '*'; may be repeated); a run of part of the suite is not a
#                   verdict either, and its table goes to bench/results/partial.md (or quick.md with --quick)
#   --write-docs    write docs/benchmarks.md and docs/benchmarks/run-N/ even from a quick or partial run
#   --regenerate    run nothing: make the table of docs/benchmarks.md again from docs/benchmarks/run-N/
#   -h, --help      this text
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

usage() {
  sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}
die() {
  echo "bench/run.sh: $*" >&2
  exit 2
}

runs=2
quick=0
write_docs=0
regenerate=0
filters=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs)
      [ $# -ge 2 ] || die "--runs needs a number"
      runs=$2
      shift 2
      ;;
    --quick) quick=1; shift ;;
    --filter)
      [ $# -ge 2 ] || die "--filter needs a glob"
      filters+=("$2")
      shift 2
      ;;
    --write-docs) write_docs=1; shift ;;
    --regenerate) regenerate=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs takes a positive number, not '$runs'"
[ ${#filters[@]} -gt 0 ] || filters=('*')

docs="$repo/docs/benchmarks.md"
committed="$repo/docs/benchmarks"
results="$repo/bench/results"
report=(dotnet "$repo/bench/BenchReport/bin/Release/net10.0/BenchReport.dll" --targets "$repo/bench/targets.json")
allow=()
if [ "$write_docs" -eq 1 ]; then allow=(--allow-not-a-verdict); fi

echo "Building the report generator and the benchmarks (Release)..." >&2
dotnet build -c Release -nologo -v:q "$repo/bench/BenchReport/BenchReport.csproj" >&2
if [ "$regenerate" -eq 1 ]; then
  mapfile -t dirs < <(find "$committed" -mindepth 1 -maxdepth 1 -type d -name 'run-*' 2>/dev/null | sort -V)
  [ ${#dirs[@]} -gt 0 ] || die "no docs/benchmarks/run-N/ to regenerate the table from"
  run_args=()
  for dir in "${dirs[@]}"; do run_args+=(--run "$dir"); done
  "${report[@]}" "${run_args[@]}" --docs "$docs" "${allow[@]}"
  echo "Regenerated the results of docs/benchmarks.md from docs/benchmarks/run-*/." >&2
  exit 0
fi
dotnet build -c Release -nologo -v:q "$repo/bench/AsyncScopes.Benchmarks/AsyncScopes.Benchmarks.csproj" >&2

# One suite run at a time on this machine, whatever the worktree: runs side by side would measure each other.
mkdir -p "$results"
if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/asyncscopes-bench.lock"
  flock -n 9 || die "another bench/run.sh is running; runs side by side would disturb each other"
fi

official=0
if [ "$quick" -eq 0 ] && [ "${#filters[@]}" -eq 1 ] && [ "${filters[0]}" = '*' ]; then official=1; fi
if [ "$official" -eq 1 ]; then kind=full; elif [ "$quick" -eq 1 ]; then kind=quick; else kind=partial; fi
bdn_args=(--filter "${filters[@]}")
if [ "$quick" -eq 1 ]; then bdn_args+=(--quick); fi

# What was measured: the commit, and whether the measured code had changes not committed.
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$commit" = unknown ]; then
  changes="not a git checkout: changes unknown"
elif [ -n "$(git -C "$repo" status --porcelain -- src bench/AsyncScopes.Benchmarks Directory.Build.props Directory.Packages.props global.json)" ]; then
  changes="uncommitted changes to src/ or bench/AsyncScopes.Benchmarks/"
else
  changes=none
fi

batch="$results/$(date -u +%Y%m%dT%H%M%SZ)-$kind"
run_dirs=()
for ((k = 1; k <= runs; k++)); do
  dir="$batch/run-$k"
  mkdir -p "$dir"
  run_dirs+=("$dir")
  {
    echo "started: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $commit"
    echo "changes: $changes"
    echo "arguments: ${bdn_args[*]}"
  } >"$dir/run-info.txt"
  echo "Run $k of $runs: BenchmarkDotNet ${bdn_args[*]}, artifacts in ${dir#"$repo"/}" >&2
  dotnet run -c Release --no-build --project "$repo/bench/AsyncScopes.Benchmarks/AsyncScopes.Benchmarks.csproj" -- \
    "${bdn_args[@]}" --artifacts "$dir" >&2
  echo "finished: $(date -u '+%Y-%m-%d %H:%M UTC')" >>"$dir/run-info.txt"
done

if [ "$official" -eq 0 ] && [ "$write_docs" -eq 0 ]; then
  out="$results/$kind.md"
  run_args=()
  for dir in "${run_dirs[@]}"; do run_args+=(--run "$dir"); done
  "${report[@]}" "${run_args[@]}" --out "$out"
  echo "Written to ${out#"$repo"/} (docs/benchmarks.md is written only from full runs, or with --write-docs)." >&2
  exit 0
fi

# The reports behind the published table are committed, so that it can be audited and made again (--regenerate).
# They are staged and the table made from them first; docs/ changes only when that succeeded.
staged="$batch/docs"
run_args=()
for ((k = 1; k <= runs; k++)); do
  mkdir -p "$staged/run-$k"
  cp "$batch/run-$k/run-info.txt" "$batch/run-$k"/results/*-report.csv "$batch/run-$k"/results/*-report-github.md "$staged/run-$k/"
  run_args+=(--run "$staged/run-$k")
done
cp "$docs" "$staged/benchmarks.md"
"${report[@]}" "${run_args[@]}" --docs "$staged/benchmarks.md" "${allow[@]}"
find "$committed" -mindepth 1 -maxdepth 1 -type d -name 'run-*' -exec rm -r {} + 2>/dev/null || true
mkdir -p "$committed"
for ((k = 1; k <= runs; k++)); do cp -r "$staged/run-$k" "$committed/"; done
cp "$staged/benchmarks.md" "$docs"
echo "Written to docs/benchmarks.md, with the reports behind it in docs/benchmarks/run-*/ ($runs run(s))." >&2
