/** Wording shared by the server's messages, the CLI and the web. Dependency-free (`@latchkey/core/words`). */

/** "1 secret", "2 secrets", "0 secrets"; `many` for irregular plurals ("1 is", "2 are" is not this). */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
