# Groups one server's CPU samples by what they ran in: reads `perf report -n --no-children --sort dso,sym --stdio` and
# prints a Markdown table of the groups, largest first, with each group's share of the samples and, given
# -v us_per_delivery=N (the server's CPU time per delivery, from bench/Chat.Load), its microseconds per delivery.
# The first rule that matches a sample's module (dso) or symbol decides its group; managed code is named through the
# runtime's perf map (DOTNET_PerfMapEnabled=1), so its module is the map and its symbol the method.
function group(dso, sym,    managed) {
  if (dso ~ /sqlite/) return "SQLite engine (native)"
  if (dso ~ /kernel/) return "kernel: sockets, scheduling, I/O"
  if (dso ~ /libcoreclr/ || sym ~ /^stub /) return "runtime, native: GC, allocation, thread pool, locks, casts, stubs"
  if (dso ~ /libclrjit/) return "runtime: JIT"
  if (dso ~ /(libSystem\.Native|libc[.-]|libpthread|ld-linux|libstdc)/) return "libc and System.Native"
  # Managed code: the method's name (from the perf map), or the module's when the method has none.
  managed = dso " " sym
  if (managed ~ /(Microsoft\.Data\.Sqlite|SQLitePCL)/) return "SQLite (managed: Microsoft.Data.Sqlite)"
  if (managed ~ /Npgsql/) return "Npgsql"
  if (managed ~ /System\.Net\.WebSockets/) return "WebSockets (managed)"
  if (managed ~ /(Microsoft\.AspNetCore|Kestrel)/) return "Kestrel and ASP.NET Core"
  if (managed ~ /(System\.Net\.Sockets|System\.IO\.Pipelines|System\.Net\.Security)/) return "sockets and pipelines (managed)"
  if (managed ~ /System\.Text\.Json/) return "JSON"
  if (managed ~ /AsyncScopes/) return "AsyncScopes"
  if (managed ~ /(^|[^A-Za-z])Chat\./) return "the server's own code"
  if (managed ~ /(System\.Threading|System\.Runtime\.CompilerServices)/) return "tasks, channels and locks (managed)"
  if (managed ~ /(System\.Diagnostics|OpenTelemetry|Microsoft\.Extensions\.Logging)/) return "logging, tracing and metrics"
  if (dso ~ /(perf-[0-9]+\.map|\.dll|JIT)/) return "other managed (collections, strings, ...)"
  return "other native"
}
# A line: the overhead, the sample count (counted, not the rounded percentage), the module, and the symbol.
/^ *[0-9.]+% +[0-9]+ / {
  share = $2
  dso = $3
  sym = $0
  if (match(sym, /\[[.k]\] /)) sym = substr(sym, RSTART + RLENGTH)
  g = group(dso, sym)
  shares[g] += share
  total += share
}
END {
  # Counts to percentages of the server's samples.
  for (g in shares) shares[g] = shares[g] * 100 / total
  total = 100
  n = 0
  for (g in shares) names[++n] = g
  # Largest first (a simple sort: there are few groups).
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (shares[names[j]] > shares[names[i]]) { t = names[i]; names[i] = names[j]; names[j] = t }
  if (us_per_delivery != "") {
    print "| group | share of the samples | µs per delivery |"
    print "|---|---:|---:|"
    for (i = 1; i <= n; i++) printf "| %s | %.1f%% | %.2f |\n", names[i], shares[names[i]], shares[names[i]] / 100 * us_per_delivery
    printf "| all | %.1f%% | %.2f |\n", total, total / 100 * us_per_delivery
  } else {
    print "| group | share of the samples |"
    print "|---|---:|"
    for (i = 1; i <= n; i++) printf "| %s | %.1f%% |\n", names[i], shares[names[i]]
  }
}
