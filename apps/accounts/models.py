from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person or service account using the portal; roles are group memberships."""

    @property
    def role_names(self) -> list[str]:
        return sorted(group.name for group in self.groups.all())
