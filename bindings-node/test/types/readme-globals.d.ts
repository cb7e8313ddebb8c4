// What the README's snippets leave to the reader: the host's own LLM client.
// Declared here so the snippets type-check as written
// (scripts/readme-snippets.js, `npm run typecheck`).

/** A tool call the model made: a name and its arguments (an object or JSON text). */
interface ReadmeToolCall {
  name: string
  arguments: Record<string, unknown> | string
}

/** The host's model client, as the README's snippets use it. */
declare const model: {
  register(tools: readonly object[]): void
  toolCalls(): AsyncIterable<ReadmeToolCall>
  reply(call: ReadmeToolCall, text: string, options: { isError: boolean }): void
  inject(text: string): void
}
