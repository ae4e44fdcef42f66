/**
 * Download figures as people read them. Byte counts, in decimal units as disks and browsers' storage pages show
 * them: "840.3 MB" below a gigabyte, "2.27 GB" from one up (a Phi-3 download is 2–3 GB, and
 * "2274.1 MB" had to be counted); time left in whole seconds, minutes and hours. Pure: the UI and
 * the worker both use it.
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '? MB';
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

/** "45 s left", "2 min 5 s left", "1 h 3 min left"; '' when there is no estimate yet. */
export function formatEta(sec: number | null): string {
  if (sec === null || !Number.isFinite(sec) || sec < 0) return '';
  const s = Math.ceil(sec);
  if (s < 60) return `${s} s left`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s left`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min left`;
}
