//! [`EntityRef`]: the handle through which the application reaches one entity by id, without
//! knowing where its actor lives, and [`Entities`], the handles of one kind. A command for an
//! entity of this node goes through the registry, which counts, traces and times it out once;
//! one for an entity another node owns is forwarded over the broker (`crate::cluster`) in the
//! wire encoding. In tests local commands cross the wire encoding too, as between nodes.

use super::entity::Entity;
use super::{wire, EntityError, Registry};
use crate::cluster::messages::{Reply, Request};
use crate::cluster::{Cluster, Place};
use std::time::Duration;

/// The entities of one kind, reached by id.
pub struct Entities<A: Entity> {
    registry: Registry<A>,
    /// Round-trip every command and reply through the wire encoding (tests).
    wire_round_trip: bool,
    /// Where slots live; `None` on a single node (every slot is local).
    cluster: Option<Cluster>,
}

impl<A: Entity> Clone for Entities<A> {
    fn clone(&self) -> Self {
        Self { registry: self.registry.clone(), wire_round_trip: self.wire_round_trip, cluster: self.cluster.clone() }
    }
}

impl<A: Entity> Entities<A> {
    pub fn new(registry: Registry<A>, wire_round_trip: bool) -> Self {
        Self { registry, wire_round_trip, cluster: None }
    }

    /// The same entities, reached wherever the cluster places them.
    pub fn in_cluster(mut self, cluster: Option<Cluster>) -> Self {
        self.cluster = cluster;
        self
    }

    pub fn get(&self, id: A::Id) -> EntityRef<A> {
        let place = self.cluster.as_ref().map_or(Place::Local, |c| c.place(A::slot(&id)));
        EntityRef { entities: self.clone(), id, place }
    }

    /// This node's actors of the kind (inspection and metrics).
    pub fn actors(&self) -> &Registry<A> {
        &self.registry
    }

    /// Runs a command another node forwarded (both in the wire encoding). Only for an entity
    /// this node serves now: a request is never forwarded twice.
    pub async fn ask_forwarded(
        &self,
        id: &[u8],
        command: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, EntityError> {
        let id: A::Id = wire::decode(id)?;
        let command: A::Command = wire::decode(command)?;
        let entity = self.get(id);
        if entity.place != Place::Local {
            return Err(EntityError::Unavailable);
        }
        Ok(wire::encode(&entity.ask_within(command, timeout).await?)?)
    }
}

/// A handle on one entity, wherever it lives.
pub struct EntityRef<A: Entity> {
    entities: Entities<A>,
    id: A::Id,
    place: Place,
}

impl<A: Entity> EntityRef<A> {
    /// Sends `command` and waits for the reply, bounded by the node's ask timeout.
    pub async fn ask(&self, command: A::Command) -> Result<A::Reply, EntityError> {
        self.ask_within(command, None).await
    }

    /// [`EntityRef::ask`] with its own bound, for commands that legitimately take longer (a
    /// payment waits for the provider).
    pub async fn ask_within(&self, command: A::Command, timeout: Option<Duration>) -> Result<A::Reply, EntityError> {
        match (self.place, &self.entities.cluster) {
            (Place::Local, _) | (_, None) => self.ask_here(command, timeout).await,
            (Place::Fenced, _) => Err(EntityError::Unavailable),
            (Place::Remote(shard), Some(cluster)) => {
                let request = self.request(&command, timeout)?;
                let limit = timeout.unwrap_or_else(|| self.entities.registry.ask_timeout());
                match cluster.forward(shard, &request, limit).await? {
                    Reply::Entity(Ok(reply)) => Ok(wire::decode(&reply)?),
                    Reply::Entity(Err(e)) => Err(e),
                    Reply::Refused(reason) => {
                        tracing::warn!(shard = shard.0, reason, "the owning node refused a forwarded command");
                        Err(EntityError::Unavailable)
                    }
                    Reply::Account(_) | Reply::Ticket(_) | Reply::Snapshot(_) => {
                        Err(EntityError::UnexpectedReply(A::command_name(&command).into()))
                    }
                }
            }
        }
    }

    async fn ask_here(&self, command: A::Command, timeout: Option<Duration>) -> Result<A::Reply, EntityError> {
        let round_trip = self.entities.wire_round_trip;
        let command = if round_trip { wire::round_trip(&command)? } else { command };
        let reply = self.entities.registry.ask(self.id, command, timeout).await;
        if !round_trip {
            return reply;
        }
        match reply {
            Ok(reply) => Ok(wire::round_trip::<A::Reply>(&reply)?),
            Err(error) => Err(wire::round_trip::<EntityError>(&error)?),
        }
    }

    /// Sends `command` without waiting for the reply.
    pub fn tell(&self, command: A::Command) -> Result<(), EntityError> {
        match (self.place, &self.entities.cluster) {
            (Place::Local, _) | (_, None) => {
                let command = if self.entities.wire_round_trip { wire::round_trip(&command)? } else { command };
                self.entities.registry.tell(self.id, command);
                Ok(())
            }
            (Place::Fenced, _) => Err(EntityError::Unavailable),
            (Place::Remote(shard), Some(cluster)) => {
                let request = self.request(&command, None)?;
                let (cluster, limit) = (cluster.clone(), self.entities.registry.ask_timeout());
                actix::spawn(async move {
                    if let Err(e) = cluster.tell(shard, &request, limit).await {
                        tracing::debug!(shard = shard.0, error = %e, "a forwarded tell was not delivered");
                    }
                });
                Ok(())
            }
        }
    }

    fn request(&self, command: &A::Command, timeout: Option<Duration>) -> Result<Request, EntityError> {
        Ok(Request::Entity {
            kind: A::KIND.to_string(),
            id: wire::encode(&self.id)?,
            command: wire::encode(command)?,
            timeout_ms: timeout.map(|t| t.as_millis() as u64),
        })
    }
}
