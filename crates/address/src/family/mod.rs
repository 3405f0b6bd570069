//! One module per address family, each behind its feature.

#[cfg(feature = "bitcoin")]
pub(crate) mod bitcoin;
#[cfg(feature = "cosmos")]
pub(crate) mod cosmos;
#[cfg(feature = "evm")]
pub(crate) mod evm;
#[cfg(feature = "near")]
pub(crate) mod near;
#[cfg(feature = "solana")]
pub(crate) mod solana;
#[cfg(feature = "ton")]
pub(crate) mod ton;
#[cfg(feature = "tron")]
pub(crate) mod tron;

#[cfg(any(feature = "bitcoin", feature = "solana", feature = "tron"))]
pub(crate) mod base58 {
    use crate::error::AddressError;

    /// Maps a base58 decoding failure.
    ///
    /// The decoders are always given a buffer as long as the input and no expected version, so
    /// only bad characters and checksum failures occur; any other (future) failure means the
    /// input carries no valid checksummed payload.
    pub(crate) fn error(err: bs58::decode::Error) -> AddressError {
        match err {
            bs58::decode::Error::InvalidCharacter { character, index } => {
                AddressError::BadCharacter {
                    position: index,
                    character,
                }
            }
            bs58::decode::Error::NonAsciiCharacter { index } => {
                AddressError::NonAscii { position: index }
            }
            _ => AddressError::BadChecksum,
        }
    }

    /// Decodes base58check and returns the payload (version byte included, checksum removed).
    #[cfg(any(feature = "bitcoin", feature = "tron"))]
    pub(crate) fn decode_check(input: &str) -> Result<Vec<u8>, AddressError> {
        bs58::decode(input)
            .with_check(None)
            .into_vec()
            .map_err(error)
    }
}
