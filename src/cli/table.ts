// Plain-text tables for CLI listings: left-aligned columns, two spaces apart, no trailing blanks,
// so the output reads well in a terminal and splits cleanly with awk.
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd());
}
