//! Sending a prepared plan with the `ovsdb` client (feature `client`): the transaction goes
//! out as is, and the answer comes back in the plan's words ([`Prepared::failure`],
//! [`Prepared::check`]).

use ovsdb::TransactOutcome;
use ovsdb::client::{Client, ClientError, ReplicaClient, ReplicaClientError};

use super::{PlanError, Prepared};

impl Prepared {
    /// Sends the transaction with `client` and checks the answer.
    ///
    /// # Errors
    /// What [`Prepared::failure`] and [`Prepared::check`] return, or [`PlanError::Send`] when
    /// the transaction could not be sent or answered (its source is the [`ClientError`]).
    pub async fn send(&self, client: &Client) -> Result<TransactOutcome, PlanError> {
        match client.transact(self.transaction()).await {
            Ok(outcome) => self.check(&outcome).map(|()| outcome),
            Err(ClientError::Transact(e)) => Err(self.failure(e)),
            Err(e) => Err(PlanError::Send(Box::new(e))),
        }
    }

    /// Sends the transaction through a [`ReplicaClient`] (to the server it follows, the Raft
    /// leader where it asks for one) and checks the answer.
    ///
    /// # Errors
    /// As [`Prepared::send`]; the source of [`PlanError::Send`] is the
    /// [`ReplicaClientError`] (for example, "may or may not have committed").
    pub async fn send_via(&self, replica: &ReplicaClient) -> Result<TransactOutcome, PlanError> {
        match replica.transact(self.transaction()).await {
            Ok(outcome) => self.check(&outcome).map(|()| outcome),
            Err(ReplicaClientError::Request(ClientError::Transact(e))) => Err(self.failure(e)),
            Err(e) => Err(PlanError::Send(Box::new(e))),
        }
    }
}
