#!/usr/bin/env bash
# Builds a checkout of any C# repository with the ASC analyzers injected, without editing its sources, and writes
# every ASC diagnostic to SARIF files and a summary per rule. For measuring the rules on real code
# (docs/analyzers-on-real-code.md).
#
#   bench/analyzers-on-repo.sh <checkout> [<project, solution or folder to build>] [-- <extra dotnet build arguments>]
#
# The analyzers (src/AsyncScopes.Analyzers, Release) are added to every C# project of the build through
# CustomAfterMicrosoftCommonTargets, with the compiler's SARIF log (ErrorLog) on; warnings are not errors there, so
# that a repository's own settings do not stop the build at the first ASC warning. Results go to
# bench/results/real-code/<checkout's folder name>/: one .sarif per project, summary.tsv (rule, file, line, message)
# and counts.tsv (rule, count). The checkout's commit is printed with the counts.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
checkout=$(cd "$1" && pwd)
shift
target=$checkout
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  target=$checkout/$1
  shift
fi
[ "${1:-}" = "--" ] && shift

name=$(basename "$checkout")
out=$repo/bench/results/real-code/$name
rm -rf "$out"
mkdir -p "$out/sarif"

echo "Building the analyzers (Release)..." >&2
dotnet build "$repo/src/AsyncScopes.Analyzers/AsyncScopes.Analyzers.csproj" -c Release -nologo -v:q >&2
analyzer=$repo/src/AsyncScopes.Analyzers/bin/Release/netstandard2.0/AsyncScopes.Analyzers.dll

targets=$out/inject.targets
cat > "$targets" <<TARGETS
<Project>
  <ItemGroup Condition="'\$(Language)' == 'C#'">
    <Analyzer Include="$analyzer" />
  </ItemGroup>
  <PropertyGroup Condition="'\$(Language)' == 'C#'">
    <ErrorLog>$out/sarif/\$(MSBuildProjectName)-\$(TargetFramework).sarif,version=2.1</ErrorLog>
    <TreatWarningsAsErrors>false</TreatWarningsAsErrors>
    <CodeAnalysisTreatWarningsAsErrors>false</CodeAnalysisTreatWarningsAsErrors>
    <RunAnalyzers>true</RunAnalyzers>
  </PropertyGroup>
</Project>
TARGETS

echo "Building $target with the analyzers..." >&2
dotnet build "$target" --no-incremental -nologo -v:q -p:CustomAfterMicrosoftCommonTargets="$targets" "$@" >"$out/build.log" 2>&1 \
  || { echo "The build failed; see $out/build.log" >&2; tail -20 "$out/build.log" >&2; exit 1; }

python3 - "$out" "$checkout" <<'PY'
import json, os, sys, collections
out, checkout = sys.argv[1], sys.argv[2]
seen, rows = set(), []
for name in sorted(os.listdir(os.path.join(out, "sarif"))):
    with open(os.path.join(out, "sarif", name), encoding="utf-8-sig") as f:
        log = json.load(f)
    for run in log.get("runs", []):
        for result in run.get("results", []):
            rule = result.get("ruleId", "")
            if not rule.startswith("ASC"):
                continue
            location = result["locations"][0]["physicalLocation"]
            path = location["artifactLocation"]["uri"].replace("file://", "")
            path = os.path.relpath(path, checkout) if path.startswith("/") else path
            line = location["region"]["startLine"]
            message = result["message"]["text"]
            key = (rule, path, line, message)  # a project built for several frameworks reports once per framework
            if key not in seen:
                seen.add(key)
                rows.append(key)
rows.sort()
with open(os.path.join(out, "summary.tsv"), "w") as f:
    f.write("rule\tfile\tline\tmessage\n")
    for row in rows:
        f.write("\t".join(map(str, row)) + "\n")
counts = collections.Counter(row[0] for row in rows)
with open(os.path.join(out, "counts.tsv"), "w") as f:
    f.write("rule\tcount\n")
    for rule in sorted(counts):
        f.write(f"{rule}\t{counts[rule]}\n")
print(f"{len(rows)} ASC diagnostics in {checkout}")
for rule in sorted(counts):
    print(f"  {rule}: {counts[rule]}")
PY
echo "commit: $(git -C "$checkout" rev-parse HEAD 2>/dev/null || echo unknown)"
echo "results: $out"
