from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import User


@admin.register(User)
class EnterpriseAccessUserAdmin(UserAdmin):
    list_display = ("username", "email", "lms_user_id", "is_staff", "is_superuser")
    search_fields = ("username", "email", "=lms_user_id")
    fieldsets = UserAdmin.fieldsets + (("LMS", {"fields": ("lms_user_id",)}),)
