import { UserError } from '../errors.js';

/** Why a checkpoint file was refused. */
export type CheckpointErrorReason =
  | 'io' // cannot read the file
  | 'magic' // not a switchsim checkpoint
  | 'version' // written by a newer (or unknown) format version
  | 'truncated' // shorter than its header says
  | 'trailing' // longer than its header says
  | 'checksum' // sha256 over the payload does not match
  | 'format' // payload decodes but a field is wrong (`field` names it)
  | 'memory'; // does not fit the destination guest memory

/** A checkpoint file that cannot be saved or restored; `reason` says why, `field` names a bad field. */
export class CheckpointError extends UserError {
  constructor(
    readonly file: string,
    readonly reason: CheckpointErrorReason,
    message: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
  }
}
