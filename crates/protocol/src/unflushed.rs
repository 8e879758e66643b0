//! A client whose answers wait in the connection's write buffer for the
//! next Sync or Flush message.
//!
//! pgwire flushes after most answers of the extended query protocol
//! (ParseComplete, ParameterDescription, RowDescription, CommandComplete),
//! so one Parse/Bind/Describe/Execute/Sync pipeline took a write, and a
//! wake-up of the client, per message. PostgreSQL writes them at the Sync
//! (or the Flush, or when its buffer fills), as the protocol allows. The
//! handlers of those messages answer through `Unflushed`; the write buffer's
//! own limit still sends a long result out as it grows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Sink;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, ProtocolVersion};
use rustls_pki_types::CertificateDer;

/// `client`, with flushing left to the Sync or Flush that ends the
/// pipeline, unless the answer makes the server wait for the client: a
/// CopyInResponse (the client then sends the data, its Sync long sent).
pub(crate) struct Unflushed<'a, C> {
    client: &'a mut C,
    awaits_client: bool,
}

impl<'a, C> Unflushed<'a, C> {
    pub(crate) fn new(client: &'a mut C) -> Self {
        Unflushed {
            client,
            awaits_client: false,
        }
    }
}

impl<C: Sink<PgWireBackendMessage> + Unpin> Sink<PgWireBackendMessage> for Unflushed<'_, C> {
    type Error = C::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut *self.client).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: PgWireBackendMessage) -> Result<(), Self::Error> {
        if matches!(
            item,
            PgWireBackendMessage::CopyInResponse(_) | PgWireBackendMessage::CopyBothResponse(_)
        ) {
            self.awaits_client = true;
        }
        Pin::new(&mut *self.client).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.awaits_client {
            return Poll::Ready(Ok(()));
        }
        let flushed = Pin::new(&mut *self.client).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            self.awaits_client = false;
        }
        flushed
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut *self.client).poll_close(cx)
    }
}

impl<C: ClientPortalStore> ClientPortalStore for Unflushed<'_, C> {
    type PortalStore = C::PortalStore;

    fn portal_store(&self) -> &Self::PortalStore {
        self.client.portal_store()
    }
}

impl<C: ClientInfo> ClientInfo for Unflushed<'_, C> {
    fn socket_addr(&self) -> SocketAddr {
        self.client.socket_addr()
    }

    fn is_secure(&self) -> bool {
        self.client.is_secure()
    }

    fn protocol_version(&self) -> ProtocolVersion {
        self.client.protocol_version()
    }

    fn set_protocol_version(&mut self, version: ProtocolVersion) {
        self.client.set_protocol_version(version);
    }

    fn pid_and_secret_key(&self) -> (i32, SecretKey) {
        self.client.pid_and_secret_key()
    }

    fn set_pid_and_secret_key(&mut self, pid: i32, secret_key: SecretKey) {
        self.client.set_pid_and_secret_key(pid, secret_key);
    }

    fn state(&self) -> PgWireConnectionState {
        self.client.state()
    }

    fn set_state(&mut self, new_state: PgWireConnectionState) {
        self.client.set_state(new_state);
    }

    fn transaction_status(&self) -> TransactionStatus {
        self.client.transaction_status()
    }

    fn set_transaction_status(&mut self, new_status: TransactionStatus) {
        self.client.set_transaction_status(new_status);
    }

    fn metadata(&self) -> &HashMap<String, String> {
        self.client.metadata()
    }

    fn metadata_mut(&mut self) -> &mut HashMap<String, String> {
        self.client.metadata_mut()
    }

    fn session_extensions(&self) -> &pgwire::api::SessionExtensions {
        self.client.session_extensions()
    }

    fn sni_server_name(&self) -> Option<&str> {
        self.client.sni_server_name()
    }

    fn client_certificates<'a>(&self) -> Option<&[CertificateDer<'a>]> {
        self.client.client_certificates()
    }
}
