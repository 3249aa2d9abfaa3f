// How far a run is, from whichever of its counts the API gives: iterations by state, a
// progress object, or the list of iterations itself.
export function progressOf(run) {
  if (run.progress && typeof run.progress === "object") {
    const p = run.progress;
    return { done: p.succeeded ?? p.done ?? 0, failed: (p.failed ?? 0) + (p.cancelled ?? 0), total: p.total ?? 0 };
  }
  const counts = run.iteration_counts || run.counts || (run.iterations && !Array.isArray(run.iterations) ? run.iterations : null);
  const total = counts ? Object.values(counts).reduce((a, b) => a + b, 0) : 0;
  if (total > 0) {
    return { done: counts.succeeded || 0, failed: (counts.failed || 0) + (counts.cancelled || 0), total };
  }
  if (Array.isArray(run.iterations) && run.iterations.length) {
    const of = (s) => run.iterations.filter((i) => i.state === s).length;
    return { done: of("succeeded"), failed: of("failed") + of("cancelled"), total: run.iterations.length };
  }
  const n = (run.partitions || []).length;
  return { done: run.state === "succeeded" ? n : 0, failed: run.state === "failed" ? n : 0, total: n };
}
