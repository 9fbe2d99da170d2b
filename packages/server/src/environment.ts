/**
 * Reading one whole-number environment variable, for the parsers that config.ts calls at start-up: unset or
 * blank gives the default; anything else must be a positive whole number (or, given `min`, one of at least
 * `min`), or start-up stops with a message naming the variable.
 */
export function wholeNumberVariable(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  min?: number,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < (min ?? 1)) {
    throw new Error(
      min === undefined
        ? `${name} must be a positive whole number`
        : `${name} must be a whole number of at least ${min}`,
    );
  }
  return value;
}
