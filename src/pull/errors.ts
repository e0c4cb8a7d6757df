/** What a pull or a conversion refuses or fails at, in one line for the CLI and the server. */
export class PullError extends Error {}
