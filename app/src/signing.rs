//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), the few lines of the
//! specification: a secret `whsec_<base64 key>`, and for each delivery
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`,
//! several signatures separated by spaces (during a secret's rotation). Onramp signs what it
//! sends to platforms with it (issue 22's webhooks), and `verify` is what a receiver runs — the
//! example platform does. Checked against the specification's published test vector.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// How far a delivery's timestamp may be from the receiver's clock (the specification's 5 minutes).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// A webhook endpoint's signing secret. Its `Debug` never shows the key; the key is wiped when
/// the value is dropped. `expose` gives the `whsec_…` text, for the one answer that shows it.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

impl WebhookSecret {
    /// A new secret of 32 random bytes (the specification asks for 24 to 64).
    pub fn generate() -> WebhookSecret {
        use rand::RngCore;
        let mut key = Zeroizing::new(vec![0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut key);
        WebhookSecret(key)
    }

    /// `whsec_<base64>`; anything else (or a key outside 24–64 bytes) is refused.
    pub fn parse(text: &str) -> Result<WebhookSecret, &'static str> {
        let encoded = text.trim().strip_prefix(SECRET_PREFIX).ok_or("a webhook secret starts with whsec_")?;
        let key = Zeroizing::new(B64.decode(encoded).map_err(|_| "a webhook secret is whsec_ and base64")?);
        if !(24..=64).contains(&key.len()) {
            return Err("a webhook secret's key is 24 to 64 bytes");
        }
        Ok(WebhookSecret(key))
    }

    /// The `whsec_…` text.
    pub fn expose(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{SECRET_PREFIX}{}", B64.encode(&*self.0)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header of a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(id, timestamp, body).finalize().into_bytes()))
    }

    /// Whether the headers of a delivery are this secret's, for this body, within
    /// [`TOLERANCE_SECONDS`] of `now`. Compares in constant time; any of several space-separated
    /// signatures may match; other versions than `v1` are ignored.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), &'static str> {
        let at: i64 = timestamp.trim().parse().map_err(|_| "webhook-timestamp is not a number of seconds")?;
        if (now - at).abs() > TOLERANCE_SECONDS {
            return Err("webhook-timestamp is more than 5 minutes away: a replay, or a wrong clock");
        }
        for signature in signatures.split(' ') {
            let Some(encoded) = signature.strip_prefix("v1,") else { continue };
            let Ok(given) = B64.decode(encoded) else { continue };
            if self.mac(id, at, body).verify_slice(&given).is_ok() {
                return Ok(());
            }
        }
        Err("no webhook-signature matches: the secret or the body differs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's test vector (the same its libraries test against).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specifications_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(&*secret.expose(), SECRET);
        assert_eq!(format!("{secret:?}"), "WebhookSecret(redacted)");
    }

    #[test]
    fn verifies_only_the_right_body_secret_and_time() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let now = TIMESTAMP + 10;
        assert_eq!(secret.verify(ID, "1614265330", SIGNATURE, BODY, now), Ok(()));
        assert_eq!(secret.verify(ID, "1614265330", &format!("v2,abc {SIGNATURE}"), BODY, now), Ok(()));
        assert!(secret.verify(ID, "1614265330", SIGNATURE, br#"{"test": 1}"#, now).is_err());
        assert!(secret.verify("msg_other", "1614265330", SIGNATURE, BODY, now).is_err());
        assert!(secret.verify(ID, "1614265330", SIGNATURE, BODY, TIMESTAMP + 301).is_err(), "a replay");
        assert!(secret.verify(ID, "soon", SIGNATURE, BODY, now).is_err());
        assert!(secret.verify(ID, "1614265330", "v1,%%%", BODY, now).is_err());
        let other = WebhookSecret::generate();
        assert!(other.verify(ID, "1614265330", SIGNATURE, BODY, now).is_err());
        let fresh = other.sign(ID, now, BODY);
        assert_eq!(
            WebhookSecret::parse(&other.expose()).unwrap().verify(ID, &now.to_string(), &fresh, BODY, now),
            Ok(())
        );
    }

    #[test]
    fn refuses_secrets_that_are_not_whsec_base64_of_24_to_64_bytes() {
        for bad in [
            "",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_",
            "whsec_%%%",
            "whsec_AAAA",
            &format!("whsec_{}", B64.encode([0u8; 65])),
        ] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad:?}");
        }
    }
}
