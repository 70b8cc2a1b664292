/**
 * Root of every error switchsim raises on purpose.
 * `UserError`: the input was wrong (bad ELF, bad flag, guest fault); the message is for the user.
 * `InternalError`: switchsim itself is wrong; the message is for us.
 */
export abstract class SwitchsimError extends Error {
  abstract readonly userFault: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class UserError extends SwitchsimError {
  readonly userFault = true;
}

export class InternalError extends SwitchsimError {
  readonly userFault = false;
}

/** A bad command-line flag or config value. */
export class ConfigError extends UserError {
  constructor(readonly option: string, message: string) {
    super(`${option}: ${message}`);
  }
}
