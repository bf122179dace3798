// Errors a user can cause (bad paths, unreadable files, missing required columns). The CLI prints
// their message alone and exits non-zero; anything else is a bug and keeps its stack trace.

export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}
